// psaq eval: top-1 / top-5 accuracy of a float or quantized model on a labelled dataset, split
// over the ranks (quant/evaluate.h).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "dist/logging.h"
#include "launch/flags.h"
#include "launch/inputs.h"
#include "launch/output_file.h"
#include "launch/process.h"
#include "launch/shared_flags.h"
#include "quant/evaluate.h"
#include "quant/text_table.h"

DEFINE_int64(max_images, 0,
             "Evaluate only the first N images of the dataset, in dataset order (0 = all).");
DEFINE_string(json_out, "",
              "Write the results to this JSON file (atomically, by rank 0): top1 and top5 as "
              "fractions in [0, 1], the counts, images, skipped, seconds and the run's settings.");
DEFINE_validator(max_images, &psaq::launch::AtLeast64<0>);

namespace psaq::launch {
namespace {

bool IsSet(const char* flag) { return !gflags::GetCommandLineFlagInfoOrDie(flag).is_default; }

std::string Percent(int64_t count, int64_t total) {
  return quant::FormatFixed(total > 0 ? 100.0 * count / total : 0.0, 2) + "%";
}

void PrintSummary(const LoadedModel& model, const model::ImageDataset& dataset,
                  const quant::EvalResult& r, int ranks) {
  const std::vector<std::pair<std::string, std::string>> fields = {
      {"model", model.description()},
      {"dataset", dataset.Describe()},
      {"images", quant::FormatCount(r.images) + " (" + quant::FormatCount(r.skipped) + " skipped)"},
      {"top-1",
       Percent(r.top1_correct, r.images) + " (" + quant::FormatCount(r.top1_correct) + ")"},
      {"top-" + std::to_string(r.topk),
       Percent(r.top5_correct, r.images) + " (" + quant::FormatCount(r.top5_correct) + ")"},
      {"time", quant::FormatSeconds(r.seconds) + " (" +
                   quant::FormatFixed(r.seconds > 0 ? r.images / r.seconds : 0.0, 1) +
                   " images/s on " + std::to_string(ranks) + " rank" + (ranks == 1 ? ")" : "s)")},
  };
  std::fputs(quant::RenderFields(fields).c_str(), stdout);
  std::fflush(stdout);
}

std::string ResultJson(const LoadedModel& model, const model::ImageDataset& dataset,
                       const quant::EvalResult& r, int ranks) {
  const nlohmann::json json = {
      {"top1", r.top1()},
      {"top5", r.top5()},
      {"images", r.images},
      {"top1_correct", r.top1_correct},
      {"top5_correct", r.top5_correct},
      {"topk", r.topk},
      {"skipped", r.skipped},
      {"seconds", r.seconds},
      {"ranks", ranks},
      {"model", FLAGS_model},
      {"model_description", model.description()},
      {"dataset", dataset.Describe()},
      {"batch_size", FLAGS_batch_size},
      {"max_images", FLAGS_max_images},
      {"psaq_version", PSAQ_VERSION},
  };
  return json.dump(2) + "\n";
}

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
  // Fail in seconds, not after the evaluation, when the result cannot be written.
  if (process.is_root() && !FLAGS_json_out.empty()) CheckWritable("--json_out", FLAGS_json_out);
  const auto dataset = OpenDataset(FLAGS_dataset, FLAGS_dataset_dir, FLAGS_split);
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

  if (process.is_root()) {
    PrintSummary(model, *dataset, result, process.size());
    if (!FLAGS_json_out.empty()) {
      WriteFileAtomically(FLAGS_json_out, ResultJson(model, *dataset, result, process.size()));
      LOG(INFO) << "wrote " << FLAGS_json_out;
    }
  }
  return 0;
}

}  // namespace psaq::launch
