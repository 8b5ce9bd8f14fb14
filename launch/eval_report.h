// What `psaq eval` reports: the console summary and the --json_out document.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "quant/evaluate.h"
#include "quant/metrics.h"

namespace psaq::launch {

struct EvalReport {
  std::string model;                // --model as given
  std::string model_description;    // LoadedModel::description()
  std::string dataset_description;  // ImageDataset::Describe()
  int ranks = 1;
  int64_t batch_size = 0;
  int64_t max_images = 0;
  // For a quantized export: w_bits, a_bits, input_range, method, num_samples from its metadata.
  std::map<std::string, std::string> quantization;
  quant::EvalResult result;
  // Per-layer errors, worst first (quantized exports only).
  std::vector<quant::TapError> layers;
};

// "key  value" lines: model, dataset, images (skipped), top-1 and top-k as percentages with the
// counts, wall time and throughput.
std::string FormatEvalSummary(const EvalReport& report);

// The --json_out document: "top1" and "top5" as fractions in [0, 1], "images", "top1_correct",
// "top5_correct", "topk", "skipped", "seconds", "ranks", the settings, "quantization" and
// "layers" ([{name, sqnr_db (null when infinite), cosine}], worst first) when present.
std::string EvalReportJson(const EvalReport& report);

}  // namespace psaq::launch
