#include "quant/evaluate.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>

#include "dist/fatal.h"
#include "dist/logging.h"
#include "dist/partition.h"
#include "dist/base/text_table.h"

namespace psaq::quant {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Rank 0's periodic progress line.
class ProgressLog {
 public:
  ProgressLog(bool enabled, double interval_seconds, int64_t total_batches)
      : enabled_(enabled && interval_seconds > 0 && total_batches > 0),
        interval_(interval_seconds),
        total_(total_batches),
        start_(Clock::now()),
        last_(start_) {}

  void Update(int64_t batches_done, int64_t images_done) {
    if (!enabled_) return;
    const auto now = Clock::now();
    if (std::chrono::duration<double>(now - last_).count() < interval_) return;
    last_ = now;
    const double elapsed = SecondsSince(start_);
    const double eta =
        elapsed / static_cast<double>(batches_done) * static_cast<double>(total_ - batches_done);
    LOG(INFO) << "eval: batch " << batches_done << "/" << total_ << " on rank 0, "
              << base::FormatCount(images_done) << " images, "
              << base::FormatFixed(static_cast<double>(images_done) / elapsed, 1) << " images/s, ETA "
              << base::FormatSeconds(eta);
  }

 private:
  bool enabled_;
  double interval_;
  int64_t total_;
  Clock::time_point start_;
  Clock::time_point last_;
};

// Sorted indices of the k = min(topk, K) largest logits, [B, k] int64 on the CPU; column 0 is the
// top-1 prediction.
at::Tensor TopIndices(const at::Tensor& logits, int topk) {
  TORCH_CHECK(logits.dim() == 2, "CountHits: logits must be [B, K], got ", logits.sizes());
  TORCH_CHECK(topk >= 1, "CountHits: topk must be >= 1, got ", topk);
  const int64_t k = std::min<int64_t>(topk, logits.size(1));
  return std::get<1>(logits.to(at::kCPU).topk(k, /*dim=*/1, /*largest=*/true, /*sorted=*/true));
}

// {top-1 hits, top-k hits} of `top` [B, k] against labels [B].
std::pair<int64_t, int64_t> HitsOf(const at::Tensor& top, const at::Tensor& labels) {
  TORCH_CHECK(labels.dim() == 1 && labels.size(0) == top.size(0), "CountHits: labels ",
              labels.sizes(), " do not match ", top.size(0), " rows of logits");
  if (top.size(0) == 0) return {0, 0};
  const at::Tensor cpu_labels = labels.to(at::kCPU, at::kLong);
  const at::Tensor hit = top.eq(cpu_labels.unsqueeze(1));  // [B, k]
  return {hit.select(1, 0).sum().item<int64_t>(), hit.any(1).sum().item<int64_t>()};
}

}  // namespace

std::string BadImagePolicyName(BadImagePolicy policy) {
  return policy == BadImagePolicy::kSkip ? "skip" : "fail";
}

BadImagePolicy ParseBadImagePolicy(const std::string& name) {
  if (name == "fail") return BadImagePolicy::kFail;
  if (name == "skip") return BadImagePolicy::kSkip;
  throw std::invalid_argument("unknown bad-image policy '" + name + "' (expected fail or skip)");
}

double EvalResult::top1() const {
  return images > 0 ? static_cast<double>(top1_correct) / static_cast<double>(images) : 0.0;
}

double EvalResult::top5() const {
  return images > 0 ? static_cast<double>(top5_correct) / static_cast<double>(images) : 0.0;
}

std::pair<int64_t, int64_t> CountHits(const at::Tensor& logits, const at::Tensor& labels,
                                      int topk) {
  const at::Tensor top = TopIndices(logits, topk);
  if (labels.numel() > 0) {
    TORCH_CHECK(labels.min().item<int64_t>() >= 0 && labels.max().item<int64_t>() < logits.size(1),
                "CountHits: a label is outside [0, ", logits.size(1), ")");
  }
  return HitsOf(top, labels);
}

EvalResult Evaluate(dist::Communicator& comm, const ForwardFn& forward,
                    const model::ImageDataset& dataset, const model::ModelConfig& config,
                    const EvalOptions& options) {
  TORCH_CHECK(options.batch_size >= 1, "Evaluate: batch_size must be >= 1, got ",
              options.batch_size);
  TORCH_CHECK(options.max_images >= 0, "Evaluate: max_images must be >= 0, got ",
              options.max_images);
  const int64_t num_classes = config.num_classes();
  TORCH_CHECK(dataset.num_classes() <= num_classes, "Evaluate: the dataset has ",
              dataset.num_classes(), " classes but the model '", config.name, "' outputs ",
              num_classes, " (", dataset.Describe(), ")");
  const auto start = Clock::now();
  at::NoGradGuard no_grad;

  const int64_t n =
      options.max_images > 0 ? std::min(options.max_images, dataset.size()) : dataset.size();
  const int64_t num_batches = (n + options.batch_size - 1) / options.batch_size;
  // Each rank takes a contiguous range of whole batches: every image is seen by exactly one rank,
  // and the batches are the same whatever the number of ranks.
  const dist::Range mine = dist::ShardRange(num_batches, comm.size(), comm.rank());

  EvalResult result;
  result.topk = static_cast<int>(std::min<int64_t>(5, num_classes));
  int64_t top1 = 0, top5 = 0, images = 0, skipped = 0;
  std::vector<int64_t> predictions;
  if (options.gather_predictions) predictions.assign(n, -1);

  ProgressLog progress(comm.rank() == 0, options.progress_interval_seconds, mine.size());
  for (int64_t b = mine.begin; b < mine.end; ++b) {
    std::vector<int64_t> indices;
    for (int64_t i = b * options.batch_size; i < std::min(n, (b + 1) * options.batch_size); ++i) {
      indices.push_back(i);
    }
    model::Batch batch = model::MakeBatch(dataset, indices, config);
    for (const model::DecodeFailure& failure : batch.failures) {
      if (options.on_bad_image == BadImagePolicy::kFail) {
        throw std::runtime_error(failure.error +
                                 " (image cannot be decoded; --on_bad_image=skip skips it)");
      }
      LOG(WARNING) << dist::RankPrefix() << "skipping malformed image " << failure.error;
      ++skipped;
    }
    const int64_t rows = batch.images.size(0);
    if (rows == 0) continue;
    const at::Tensor logits = forward(batch.images.to(options.device));  // [B, K]
    TORCH_CHECK(logits.dim() == 2 && logits.size(0) == rows && logits.size(1) == num_classes,
                "Evaluate: the forward returned ", logits.sizes(), " for a batch of ", rows,
                " images; expected [", rows, ", ", num_classes, "]");
    TORCH_CHECK(batch.labels.max().item<int64_t>() < num_classes, "Evaluate: label ",
                batch.labels.max().item<int64_t>(), " of ", dataset.Describe(),
                " is outside the model's ", num_classes, " classes");
    const at::Tensor top = TopIndices(logits, result.topk);  // [B, k]
    const auto hits = HitsOf(top, batch.labels);
    top1 += hits.first;
    top5 += hits.second;
    images += rows;
    if (options.gather_predictions) {
      const at::Tensor best = top.select(1, 0).contiguous();  // agrees with the top-1 count
      const auto* p = best.data_ptr<int64_t>();
      for (int64_t r = 0; r < rows; ++r) predictions[batch.indices[r]] = p[r];
    }
    progress.Update(b - mine.begin + 1, images);
  }

  // One all-reduce of the counts: integers, so the sums are exact and order-independent.
  const c10::Device comm_device =
      comm.backend() == "nccl" ? options.device : c10::Device(c10::kCPU);
  at::Tensor counts = at::tensor(std::vector<int64_t>{top1, top5, images, skipped},
                                 at::TensorOptions().dtype(at::kLong))
                          .to(comm_device);
  comm.AllReduce(counts, dist::ReduceOp::kSum);
  counts = counts.to(at::kCPU);
  result.top1_correct = counts[0].item<int64_t>();
  result.top5_correct = counts[1].item<int64_t>();
  result.images = counts[2].item<int64_t>();
  result.skipped = counts[3].item<int64_t>();
  if (options.gather_predictions && n > 0) {
    // Each image is predicted by exactly one rank, the others hold -1: the maximum is the value.
    at::Tensor all = at::tensor(predictions, at::TensorOptions().dtype(at::kLong)).to(comm_device);
    comm.AllReduce(all, dist::ReduceOp::kMax);
    all = all.to(at::kCPU).contiguous();
    result.predictions.assign(all.data_ptr<int64_t>(), all.data_ptr<int64_t>() + n);
  }
  result.seconds = SecondsSince(start);
  return result;
}

std::vector<TapError> LayerErrors(QuantizedModel& model, const model::ImageDataset& dataset,
                                  const EvalOptions& options, int64_t num_batches) {
  TORCH_CHECK(num_batches >= 1, "LayerErrors: num_batches must be >= 1, got ", num_batches);
  TORCH_CHECK(options.batch_size >= 1, "LayerErrors: batch_size must be >= 1, got ",
              options.batch_size);
  const int64_t n =
      options.max_images > 0 ? std::min(options.max_images, dataset.size()) : dataset.size();
  std::vector<int64_t> indices;
  for (int64_t i = 0; i < std::min(n, num_batches * options.batch_size); ++i) indices.push_back(i);
  const model::Batch batch = model::MakeBatch(dataset, indices, model.model().config());
  if (!batch.failures.empty() && options.on_bad_image == BadImagePolicy::kFail) {
    throw std::runtime_error(batch.failures.front().error +
                             " (image cannot be decoded; --on_bad_image=skip skips it)");
  }
  TORCH_CHECK(batch.images.size(0) > 0, "LayerErrors: none of the first ", indices.size(),
              " images of ", dataset.Describe(), " could be decoded");
  std::vector<TapError> errors = PerLayerError(model, batch.images.to(options.device));
  // NaN (a degenerate layer) sorts first: it is the one to look at.
  std::stable_sort(errors.begin(), errors.end(), [](const TapError& a, const TapError& b) {
    if (std::isnan(a.sqnr_db) != std::isnan(b.sqnr_db)) return std::isnan(a.sqnr_db);
    return a.sqnr_db < b.sqnr_db;
  });
  return errors;
}

std::string FormatLayerErrors(const std::vector<TapError>& errors, int max_rows) {
  base::TextTable table({"rank", "layer", "SQNR dB", "cosine"});
  table.SetAlign(0, base::TextTable::Align::kRight);
  table.SetAlign(2, base::TextTable::Align::kRight);
  table.SetAlign(3, base::TextTable::Align::kRight);
  int64_t shown = 0;
  for (size_t i = 0; i < errors.size(); ++i) {
    const TapError& e = errors[i];
    // The worst max_rows layers, and always the output: the end-to-end error.
    const bool keep = max_rows <= 0 || static_cast<int64_t>(i) < max_rows || e.name == "output";
    if (!keep) continue;
    table.AddRow(
        {std::to_string(i + 1), e.name, base::FormatFixed(e.sqnr_db, 2), base::FormatFixed(e.cosine, 6)});
    ++shown;
  }
  std::string text = table.Render();
  const int64_t left_out = static_cast<int64_t>(errors.size()) - shown;
  if (left_out > 0) {
    text += "(" + std::to_string(left_out) + " better layers not shown)\n";
  }
  return text;
}

}  // namespace psaq::quant
