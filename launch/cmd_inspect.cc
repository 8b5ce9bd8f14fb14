// psaq inspect: describe a weights file or a quantized export (quant/inspect.h), or compare an
// export's calibrated activation ranges with the ranges real images produce
// (quant/range_compare.h).
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

#include "dist/base/atomic_file.h"
#include "launch/flags.h"
#include "launch/process.h"
#include "launch/shared_flags.h"
#include "model/data/dataset_by_name.h"
#include "model/detect/load_detector.h"
#include "quant/export.h"
#include "quant/inspect.h"
#include "quant/range_compare.h"

DEFINE_string(file, "",
              "The file to describe: a float weights file (.safetensors) or a quantized export "
              "written by 'psaq quantize' (its manifest is read from beside it).");
DEFINE_bool(tensors, false, "Also list every tensor: name, dtype, shape and bytes.");
DEFINE_string(compare, "",
              "A quantized export (or the output directory of 'psaq quantize', meaning its "
              "model.safetensors): per activation point, its calibrated range beside the range "
              "real images (--dataset) produce in the float model, the share of those real "
              "activations outside the calibrated range, and the SQNR of the point's quantized "
              "output on them; most damaged (lowest SQNR) first.");
DEFINE_int64(compare_images, 1000,
             "With --compare: the first N images of --dataset (fewer when it has fewer).");
DEFINE_int32(compare_rows, 20, "With --compare: points shown on stdout (0 = all; JSON has all).");
DEFINE_string(compare_json, "", "With --compare: also write every row to this JSON file.");
// The job's quantizer flags (launch/job_flags.cc): a float detector's points are listed as they
// would be quantized.
DECLARE_int32(w_bits);
DECLARE_int32(a_bits);
DECLARE_string(quant_scope);
DEFINE_validator(compare_images, &psaq::launch::AtLeast64<1>);
DEFINE_validator(compare_rows, &psaq::launch::AtLeast<0>);

namespace psaq::launch {
namespace {

bool IsSet(const char* flag) { return !gflags::GetCommandLineFlagInfoOrDie(flag).is_default; }

// --compare names an export or the run directory holding one.
std::string ExportPath(const std::string& compare) {
  if (compare.size() > 12 && compare.compare(compare.size() - 12, 12, ".safetensors") == 0) {
    return compare;
  }
  return compare + "/model.safetensors";
}

int RunCompare(ProcessContext& process) {
  if (process.is_root() && !FLAGS_compare_json.empty()) {
    base::CheckWritable("--compare_json", FLAGS_compare_json);
  }
  const auto dataset = model::OpenImageDataset(FLAGS_dataset, FLAGS_dataset_dir, FLAGS_split);
  quant::ImportedModel imported = quant::ImportQuantizedModel(ExportPath(FLAGS_compare));
  quant::QuantizedModel& model = *imported.model;
  const int64_t n = std::min(FLAGS_compare_images, dataset->size());
  std::vector<at::Tensor> batches;
  for (int64_t start = 0; start < n; start += FLAGS_batch_size) {
    std::vector<int64_t> indices;
    for (int64_t i = start; i < std::min(n, start + FLAGS_batch_size); ++i) indices.push_back(i);
    model::Batch batch = model::MakeBatch(*dataset, indices, model.model().config());
    if (!batch.failures.empty()) {
      throw std::runtime_error(batch.failures.front().error + " (--dataset image cannot be decoded)");
    }
    batches.push_back(batch.images);
  }
  // Small and not collective: every rank computes it, rank 0 prints.
  const std::vector<quant::PointRangeComparison> points = quant::CompareRanges(model, batches);
  if (!process.is_root()) return 0;
  std::printf("activation ranges of %s against %lld images of %s, most damaged first:\n%s",
              ExportPath(FLAGS_compare).c_str(), static_cast<long long>(n),
              dataset->Describe().c_str(),
              quant::FormatRangeComparison(points, FLAGS_compare_rows).c_str());
  std::fflush(stdout);
  if (!FLAGS_compare_json.empty()) {
    nlohmann::json out = {{"export", ExportPath(FLAGS_compare)},
                          {"dataset", dataset->Describe()},
                          {"images", n},
                          {"points", quant::RangeComparisonJson(points)}};
    base::WriteFileAtomic(FLAGS_compare_json, out.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

void CheckInspectFlags() {
  if (FLAGS_file.empty() == FLAGS_compare.empty()) {
    throw UsageError("give exactly one of --file (describe) and --compare (range diagnostic)");
  }
  if (!FLAGS_compare.empty() && FLAGS_dataset.empty()) {
    throw UsageError("--compare needs --dataset (the real images to compare with)");
  }
  if (FLAGS_compare.empty()) {
    for (const char* flag : {"dataset", "dataset_dir", "split", "batch_size", "compare_images",
                             "compare_rows", "compare_json"}) {
      if (IsSet(flag)) throw UsageError(std::string("--") + flag + " applies to --compare only");
    }
  } else if (FLAGS_tensors) {
    throw UsageError("--tensors applies to --file only");
  }
  const bool float_detector = !FLAGS_file.empty() && detect::IsDetectorFile(FLAGS_file) &&
                              quant::KindOfFile(FLAGS_file) == quant::InspectedKind::kWeights;
  for (const char* flag : {"w_bits", "a_bits", "quant_scope"}) {
    if (IsSet(flag) && !float_detector) {
      throw UsageError(std::string("--") + flag +
                       " applies to --file=<float detector weights> only (an export lists its own)");
    }
  }
}

int RunInspect(ProcessContext& process) {
  if (!FLAGS_compare.empty()) return RunCompare(process);
  quant::InspectOptions options;
  options.list_tensors = FLAGS_tensors;
  options.quant.weight_bits = FLAGS_w_bits;
  options.quant.act_bits = FLAGS_a_bits;
  options.scope = quant::ParseDetectorScope(FLAGS_quant_scope);
  // Every rank reads the header (cheap); rank 0 prints.
  const std::string text = quant::InspectFile(FLAGS_file, options);
  if (process.is_root()) std::fputs(text.c_str(), stdout);
  return 0;
}

}  // namespace psaq::launch
