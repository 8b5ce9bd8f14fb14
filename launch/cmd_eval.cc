// psaq eval: top-1 / top-5 accuracy of a float or quantized model on a labelled dataset, split
// over the ranks (quant/evaluate.h); for a detector file, box and mask AP on a COCO instances
// JSON (launch/detect_eval.h).
#include <cstdio>
#include <vector>

#include "dist/base/atomic_file.h"
#include "dist/base/text_table.h"
#include "dist/logging.h"
#include "launch/detect_eval.h"
#include "launch/eval_report.h"
#include "launch/flags.h"
#include "launch/inputs.h"
#include "launch/process.h"
#include "launch/shared_flags.h"
#include "model/data/dataset_by_name.h"
#include "quant/evaluate.h"

DEFINE_int64(max_images, 0,
             "Evaluate only the first N images of the dataset, in dataset order (0 = all).");
DEFINE_string(json_out, "",
              "Write the results to this JSON file (atomically, by rank 0): top1 and top5 as "
              "fractions in [0, 1], the counts, images, skipped, seconds and the run's settings.");
DEFINE_int32(sqnr_batches, 1,
             "For a quantized export: compare its activations with its float model's, layer by "
             "layer, on the first N batches of --batch_size images (as one batch), and print the "
             "per-layer SQNR table, worst layers first (0 = skip; memory grows with N).");
DEFINE_string(detections_out, "",
              "For a detector: also write its detections as a COCO results JSON (what "
              "pycocotools' COCO.loadRes reads) to this file (atomically, by rank 0).");
DEFINE_validator(max_images, &psaq::launch::AtLeast64<0>);
DEFINE_validator(sqnr_batches, &psaq::launch::AtLeast<0>);

namespace psaq::launch {
namespace {

bool IsSet(const char* flag) { return !gflags::GetCommandLineFlagInfoOrDie(flag).is_default; }

// Worst layers shown on the console; --json_out has them all.
constexpr int kLayerRows = 20;

}  // namespace

void CheckEvalFlags() {
  if (FLAGS_model.empty()) throw UsageError("--model is required");
  if (FLAGS_dataset.empty()) throw UsageError("--dataset is required");
  if (FLAGS_dataset != "fashion_mnist") {
    for (const char* flag : {"split", "dataset_dir"}) {
      if (IsSet(flag)) {
        throw UsageError(std::string("--") + flag +
                         " applies to --dataset=fashion_mnist only (for an ImageFolder, point "
                         "--dataset at the split's directory)");
      }
    }
  }
}

int RunEval(ProcessContext& process) {
  if (IsDetectorFile(FLAGS_model)) {
    if (IsSet("sqnr_batches")) throw UsageError("--sqnr_batches applies to quantized exports only");
    DetectEvalRequest request;
    request.model = FLAGS_model;
    request.dataset = FLAGS_dataset;
    // A detector runs at each image's own size: one image per pass unless asked (as mmdetection's
    // test loader), not the classifiers' 64.
    request.batch_size = IsSet("batch_size") ? FLAGS_batch_size : 1;
    request.max_images = FLAGS_max_images;
    request.on_bad_image = FLAGS_on_bad_image;
    request.json_out = FLAGS_json_out;
    request.detections_out = FLAGS_detections_out;
    return RunDetectEval(process, request);
  }
  if (!FLAGS_detections_out.empty()) {
    throw UsageError("--detections_out applies to detectors only; --model=" + FLAGS_model +
                     " is not a detector weights file");
  }
  // Fail in seconds, not after the evaluation, when the result cannot be written.
  if (process.is_root() && !FLAGS_json_out.empty()) base::CheckWritable("--json_out", FLAGS_json_out);
  const auto dataset = model::OpenImageDataset(FLAGS_dataset, FLAGS_dataset_dir, FLAGS_split);
  LoadedModel model(FLAGS_model, process.device());
  if (process.is_root()) {
    if (model.random_weights()) {
      LOG(WARNING) << "--model=" << FLAGS_model
                   << " is a preset name: its weights are random, expect chance accuracy";
    }
    LOG(INFO) << "evaluating " << model.description() << " on " << dataset->Describe();
  }

  quant::EvalOptions options;
  options.batch_size = FLAGS_batch_size;
  options.max_images = FLAGS_max_images;
  options.on_bad_image = quant::ParseBadImagePolicy(FLAGS_on_bad_image);
  options.device = process.device();
  const quant::EvalResult result =
      quant::Evaluate(process.device_comm(), model.forward(), *dataset, model.config(), options);

  if (!process.is_root()) return 0;
  EvalReport report;
  report.model = FLAGS_model;
  report.model_description = model.description();
  report.dataset_description = dataset->Describe();
  report.ranks = process.size();
  report.batch_size = FLAGS_batch_size;
  report.max_images = FLAGS_max_images;
  report.result = result;
  std::fputs(FormatEvalSummary(report).c_str(), stdout);
  if (model.quantized() != nullptr) {
    for (const char* key : {"w_bits", "a_bits", "input_range", "quantizer", "act_observer",
                            "method", "num_samples"}) {
      if (model.metadata().count(key)) report.quantization[key] = model.metadata().at(key);
    }
    if (FLAGS_sqnr_batches > 0) {
      report.layers = quant::LayerErrors(*model.quantized(), *dataset, options, FLAGS_sqnr_batches);
      std::printf(
          "\nper-layer SQNR of the quantized activations vs the float model's on the first "
          "%d batch(es), worst first:\n%s",
          FLAGS_sqnr_batches, quant::FormatLayerErrors(report.layers, kLayerRows).c_str());
    }
  } else if (IsSet("sqnr_batches")) {
    LOG(WARNING) << "--sqnr_batches applies to quantized exports only";
  }
  std::fflush(stdout);
  if (!FLAGS_json_out.empty()) {
    base::WriteFileAtomic(FLAGS_json_out, EvalReportJson(report));
    LOG(INFO) << "wrote " << FLAGS_json_out;
  }
  return 0;
}

}  // namespace psaq::launch
