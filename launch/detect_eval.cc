#include "launch/detect_eval.h"

#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>
#include <vector>

#include "dist/base/atomic_file.h"
#include "dist/base/format.h"
#include "dist/base/text_table.h"
#include "dist/logging.h"
#include "model/data/dataset_by_name.h"
#include "model/detect/load_detector.h"
#include "model/safetensors.h"
#include "quant/export.h"
#include "quant/quantized_detector.h"

namespace psaq::launch {
namespace {

// pycocotools' summarize() rows: (is AP, IoU threshold or -1 for .50:.95, area, maxDets).
struct SummaryRow {
  bool ap;
  double iou;
  const char* area;
  int max_dets;
};
constexpr SummaryRow kSummaryRows[12] = {
    {true, -1, "all", 100},    {true, .5, "all", 100},     {true, .75, "all", 100},
    {true, -1, "small", 100},  {true, -1, "medium", 100},  {true, -1, "large", 100},
    {false, -1, "all", 1},     {false, -1, "all", 10},     {false, -1, "all", 100},
    {false, -1, "small", 100}, {false, -1, "medium", 100}, {false, -1, "large", 100}};

nlohmann::json StatsJson(const data::CocoStats& stats) {
  nlohmann::json json = nlohmann::json::object();
  for (size_t i = 0; i < stats.stats.size(); ++i) {
    json[data::CocoStats::Names()[i]] = stats.stats[i];
  }
  return json;
}

}  // namespace

bool IsDetectorFile(const std::string& path) { return detect::IsDetectorFile(path); }

std::string FormatCocoSummarize(const data::CocoStats& stats) {
  std::string out;
  for (size_t i = 0; i < 12; ++i) {
    const SummaryRow& row = kSummaryRows[i];
    char line[128];
    // The format of pycocotools' _summarize: ' {:<18} {} @[ IoU={:<9} | area={:>6s} |
    // maxDets={:>3d} ] = {:0.3f}'.
    char iou[16];
    if (row.iou < 0) {
      std::snprintf(iou, sizeof(iou), "0.50:0.95");
    } else {
      std::snprintf(iou, sizeof(iou), "%0.2f", row.iou);
    }
    std::snprintf(line, sizeof(line), " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %0.3f\n",
                  row.ap ? "Average Precision" : "Average Recall", row.ap ? "(AP)" : "(AR)", iou,
                  row.area, row.max_dets, stats.stats[i]);
    out += line;
  }
  return out;
}

std::string FormatDetectEvalSummary(const DetectEvalReport& report) {
  const quant::DetectorEvalResult& r = report.result;
  const std::string ranks = std::to_string(report.ranks) + " rank" + (report.ranks == 1 ? "" : "s");
  const std::vector<std::pair<std::string, std::string>> fields = {
      {"model", report.model_description},
      {"dataset", report.dataset_description},
      {"images", base::FormatCount(r.images) + " (" + base::FormatCount(r.skipped) + " skipped)"},
      {"detections", base::FormatCount(r.detections)},
      {"inference", base::FormatSeconds(r.forward_seconds) + " (" +
                        base::FormatFixed(r.images_per_second(), 2) + " images/s, batch " +
                        std::to_string(report.request.batch_size) + ", " + ranks + ")"},
      {"total time", base::FormatSeconds(r.seconds) + " (evaluation included)"},
      {"peak memory", base::FormatFixed(r.peak_rss_mb, 0) + " MiB resident (largest rank)"},
  };
  return base::RenderFields(fields) + "\nbbox:\n" + FormatCocoSummarize(r.box) + "\nsegm:\n" +
         FormatCocoSummarize(r.segm);
}

std::string DetectEvalReportJson(const DetectEvalReport& report) {
  const quant::DetectorEvalResult& r = report.result;
  const nlohmann::json json = {
      {"box", StatsJson(r.box)},
      {"segm", StatsJson(r.segm)},
      {"images", r.images},
      {"skipped", r.skipped},
      {"detections", r.detections},
      {"seconds", r.seconds},
      {"inference_seconds", r.forward_seconds},
      {"images_per_second", r.images_per_second()},
      {"peak_rss_mb", r.peak_rss_mb},
      {"ranks", report.ranks},
      {"batch_size", report.request.batch_size},
      {"max_images", report.request.max_images},
      {"model", report.request.model},
      {"model_description", report.model_description},
      {"dataset", report.dataset_description},
      {"psaq_version", PSAQ_VERSION},
  };
  return json.dump(2) + "\n";
}

int RunDetectEval(ProcessContext& process, const DetectEvalRequest& request) {
  if (process.is_root()) {
    // Fail in seconds, not after the evaluation, when a result cannot be written.
    if (!request.json_out.empty()) base::CheckWritable("--json_out", request.json_out);
    if (!request.detections_out.empty()) {
      base::CheckWritable("--detections_out", request.detections_out);
    }
  }
  if (!model::IsDetectionDataset(request.dataset)) {
    throw std::runtime_error("--dataset=" + request.dataset + ": " + request.model +
                             " is a detector: evaluate it on a COCO instances JSON file");
  }
  quant::DetectorEvalOptions options;
  options.batch_size = request.batch_size;
  options.max_images = request.max_images;
  options.on_bad_image = quant::ParseBadImagePolicy(request.on_bad_image);
  options.device = process.device();
  options.gather_detections = !request.detections_out.empty();
  data::CocoOptions coco;
  coco.on_bad_entry = options.on_bad_image == quant::BadImagePolicy::kSkip
                          ? data::BadEntryPolicy::kSkip
                          : data::BadEntryPolicy::kFail;
  const auto dataset = model::OpenDetectionDataset(request.dataset, "", coco);
  // A float detector file, or a quantized detector export (quant/export.h) evaluated as the
  // quantized detector it rebuilds.
  std::unique_ptr<quant::QuantizedDetector> quantized;
  detect::DetectorPtr detector;
  if (quant::IsQuantizedDetectorExport(model::ReadSafetensorsHeader(request.model).metadata)) {
    quantized = quant::ImportQuantizedDetector(request.model).detector;
    detector = quantized->detector_ptr();
  } else {
    detector = detect::LoadDetector(request.model);
  }
  detector->to(options.device);

  DetectEvalReport report;
  report.request = request;
  const detect::DetectorConfig& config = detector->config();
  report.model_description = "detector " + config.name + " (" + detect::kMaskRcnnSwinArch + ", " +
                             std::to_string(config.num_classes) + " classes" +
                             (quantized ? ", " + quant::DescribeQuantConfig(quantized->config()) +
                                              " scope " + quant::DetectorScopeName(quantized->scope())
                                        : "") +
                             ")";
  report.dataset_description = dataset->Describe();
  report.ranks = process.size();
  if (process.is_root()) {
    for (const std::string& reason : dataset->skip_reasons()) LOG(WARNING) << "skipped " << reason;
    LOG(INFO) << "evaluating " << report.model_description << " on " << report.dataset_description;
  }
  report.result =
      quantized ? quant::EvaluateDetector(process.device_comm(), *quantized, *dataset, options)
                : quant::EvaluateDetector(process.device_comm(), *detector, *dataset, options);
  // Images the dataset left out when it was opened count as skipped too.
  report.result.skipped += dataset->skipped_images();

  if (!process.is_root()) return 0;
  std::fputs(FormatDetectEvalSummary(report).c_str(), stdout);
  std::fflush(stdout);
  if (!request.json_out.empty()) {
    base::WriteFileAtomic(request.json_out, DetectEvalReportJson(report));
    LOG(INFO) << "wrote " << request.json_out;
  }
  if (!request.detections_out.empty()) {
    base::WriteFileAtomic(request.detections_out,
                          quant::CocoResultsJson(report.result.detections_all));
    LOG(INFO) << "wrote " << request.detections_out << " ("
              << base::FormatCount(static_cast<int64_t>(report.result.detections_all.size()))
              << " detections)";
  }
  return 0;
}

}  // namespace psaq::launch
