#include "launch/train/train.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include "dist/base/format.h"
#include "dist/collective_util.h"
#include "dist/logging.h"
#include "dist/partition.h"
#include "launch/train/train_steps.h"
#include "model/data/preprocess.h"

namespace psaq::train {
namespace {

// Random streams of a training job (dist::DeriveSeed's `stream`).
constexpr uint64_t kOrderStream = 0x7472616e6f726472ULL;    // "tranordr"
constexpr uint64_t kAugmentStream = 0x7472616e61756720ULL;  // "tranaug "

using Clock = std::chrono::steady_clock;

[[noreturn]] void Invalid(const std::string& field, const std::string& value,
                          const std::string& rule) {
  throw std::invalid_argument("training options: " + field + " = " + value + " " + rule);
}

// MakeBatch, failing on any image that does not decode (training has no skip policy).
model::Batch DecodeOrThrow(const model::ImageDataset& data, const std::vector<int64_t>& indices,
                           const model::ModelConfig& config) {
  model::Batch batch = model::MakeBatch(data, indices, config);
  if (!batch.failures.empty()) {
    std::ostringstream out;
    out << batch.failures.size()
        << " image(s) failed to decode, first: " << batch.failures.front().error;
    throw std::runtime_error(out.str());
  }
  return batch;
}


}  // namespace

void ValidateTrainOptions(const TrainOptions& o) {
  if (o.epochs < 1) Invalid("epochs", std::to_string(o.epochs), "must be >= 1");
  if (o.batch_size < 1) Invalid("batch_size", std::to_string(o.batch_size), "must be >= 1");
  if (!(o.warmup_epochs >= 0 && o.warmup_epochs < o.epochs)) {
    Invalid("warmup_epochs", std::to_string(o.warmup_epochs),
            "must be in [0, epochs = " + std::to_string(o.epochs) + ")");
  }
  if (!(o.label_smoothing >= 0 && o.label_smoothing < 1)) {
    Invalid("label_smoothing", std::to_string(o.label_smoothing), "must be in [0, 1)");
  }
  if (o.eval_every_epochs < 0) {
    Invalid("eval_every_epochs", std::to_string(o.eval_every_epochs), "must be >= 0");
  }
  if (o.eval_batch_size < 1) {
    Invalid("eval_batch_size", std::to_string(o.eval_batch_size), "must be >= 1");
  }
  if (o.log_every_steps < 0) {
    Invalid("log_every_steps", std::to_string(o.log_every_steps), "must be >= 0");
  }
  if (o.max_steps < 0) Invalid("max_steps", std::to_string(o.max_steps), "must be >= 0");
  if (o.grad_sync.bucket_bytes < 1) {
    Invalid("grad_sync.bucket_bytes", std::to_string(o.grad_sync.bucket_bytes), "must be >= 1");
  }
  ValidateAugment(o.augment);
}

std::vector<int64_t> EpochOrder(int64_t n, uint64_t seed, int64_t epoch) {
  TORCH_CHECK(n >= 0 && epoch >= 0, "EpochOrder: n and epoch must be >= 0");
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  uint64_t state = dist::DeriveSeed(seed, kOrderStream, static_cast<uint64_t>(epoch));
  for (int64_t i = n - 1; i > 0; --i) {
    // j uniform in [0, i] by rejection (no modulo bias).
    const uint64_t range = static_cast<uint64_t>(i) + 1;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
    uint64_t r = 0;
    do {
      r = dist::SplitMix64(state);
      state += 0x9E3779B97F4A7C15ULL;
    } while (r >= limit);
    std::swap(order[i], order[r % range]);
  }
  return order;
}

EvalResult Evaluate(model::VisionModel& model, const model::ImageDataset& dataset,
                    int64_t batch_size, dist::Communicator* comm) {
  TORCH_CHECK(batch_size >= 1, "Evaluate: batch_size must be >= 1, got ", batch_size);
  const bool was_training = model.is_training();
  model.eval();
  c10::NoGradGuard no_grad;
  const at::Tensor probe = model.parameters().front();
  const int world = comm ? comm->size() : 1, rank = comm ? comm->rank() : 0;
  const dist::Range mine = dist::ShardRange(dataset.size(), world, rank);
  std::vector<double> sums = {0, 0, 0};  // correct, count, loss sum
  for (int64_t begin = mine.begin; begin < mine.end; begin += batch_size) {
    std::vector<int64_t> indices;
    for (int64_t i = begin; i < std::min(begin + batch_size, mine.end); ++i) indices.push_back(i);
    const model::Batch batch = DecodeOrThrow(dataset, indices, model.config());
    const at::Tensor images = batch.images.to(probe.options());
    const at::Tensor labels = batch.labels.to(probe.device());
    const at::Tensor logits = model.forward(images);  // [B, K]
    sums[0] += static_cast<double>(logits.argmax(1).eq(labels).sum().item<int64_t>());
    sums[1] += static_cast<double>(indices.size());
    sums[2] += at::cross_entropy_loss(logits.to(at::kDouble), labels, {}, at::Reduction::Sum)
                   .item<double>();
  }
  SumOverRanks(sums, comm, probe.device());
  model.train(was_training);
  EvalResult result;
  result.correct = static_cast<int64_t>(sums[0]);
  result.count = static_cast<int64_t>(sums[1]);
  result.loss = result.count > 0 ? sums[2] / static_cast<double>(result.count) : 0.0;
  return result;
}

namespace {

// Totals of one epoch so far: {loss sum, correct, images}; this rank's, or all ranks' once summed.
using Totals = std::vector<double>;
double Mean(const Totals& t, int i) { return t[i] / std::max(t[2], 1.0); }

// The state of one Train call: the schedule, the optimiser and the per-step work.
class Trainer {
 public:
  Trainer(model::VisionModel& model, const model::ImageDataset& train_set,
          const model::ImageDataset* test_set, const TrainOptions& options,
          dist::Communicator* comm)
      : model_(model),
        train_set_(train_set),
        test_set_(test_set),
        options_(options),
        comm_(comm),
        world_(comm ? comm->size() : 1),
        rank_(comm ? comm->rank() : 0),
        n_(train_set.size()) {
    const StepPlan plan = PlanSteps(n_, options.batch_size, options.drop_last, options.epochs,
                                    options.lr, options.warmup_epochs, options.max_steps,
                                    "training options");
    steps_per_epoch_ = plan.steps_per_epoch;
    lr_ = plan.lr;
    planned_steps_ = plan.planned_steps;
    params_ = TrainableParameters(model);
    param_options_ = params_.front().options();
    sync_ = options.grad_sync;
    sync_.reduce = dist::ReduceOp::kSum;
  }

  TrainResult Run() {
    const auto start = Clock::now();
    if (world_ > 1) {
      result_.comm_seconds += BroadcastParameters(*comm_, params_, 0, sync_).comm_seconds;
    }
    optimizer_ = MakeAdamW(model_, options_.adamw);
    // Constant padding fills with black: the normalised value of pixel 0, per channel.
    fill_ = model::NormalisedPixelRange(model_.config()).first.to(param_options_);
    if (rank_ == 0) {
      LOG(INFO) << "training " << model_.config().name << " on " << train_set_.Describe() << ": "
                << options_.epochs << " epochs x " << steps_per_epoch_ << " steps of "
                << options_.batch_size << " images over " << world_ << " rank(s), "
                << LrShapeName(lr_.shape) << " lr peak " << lr_.peak_lr << ", warm-up "
                << lr_.warmup_steps << " steps";
    }
    for (int epoch = 0; epoch < options_.epochs && result_.steps < planned_steps_; ++epoch) {
      result_.epochs.push_back(RunEpoch(epoch));
    }
    model_.eval();
    result_.seconds = SecondsSince(start);
    return result_;
  }

 private:
  EpochStats RunEpoch(int epoch) {
    model_.train();
    const auto epoch_start = Clock::now();
    const std::vector<int64_t> order = EpochOrder(n_, options_.seed, epoch);
    EpochStats stats;
    stats.epoch = epoch + 1;
    Totals local = {0, 0, 0}, global = local;
    for (int64_t s = 0; s < steps_per_epoch_ && result_.steps < planned_steps_; ++s) {
      stats.lr = TrainLrAtStep(lr_, result_.steps);
      Step(order, epoch, s, stats.lr, local);
      ++result_.steps;
      ++stats.steps;
      const bool epoch_end = s + 1 == steps_per_epoch_ || result_.steps == planned_steps_;
      if (!epoch_end &&
          (options_.log_every_steps == 0 || stats.steps % options_.log_every_steps != 0)) {
        continue;
      }
      global = local;
      SumOverRanks(global, comm_, param_options_.device());
      if (!std::isfinite(Mean(global, 0))) {
        throw std::runtime_error("training diverged: the mean loss of epoch " +
                                 std::to_string(epoch + 1) + " is " +
                                 std::to_string(Mean(global, 0)) + " at step " +
                                 std::to_string(s + 1) + " (lower the learning rate)");
      }
      if (rank_ == 0 && !epoch_end) LogProgress(epoch, s, stats.lr, global, epoch_start);
    }
    stats.seconds = SecondsSince(epoch_start);
    train_seconds_ += stats.seconds;
    stats.images = static_cast<int64_t>(global[2]);
    stats.train_loss = Mean(global, 0);
    stats.train_top1 = 100.0 * Mean(global, 1);
    stats.images_per_second = global[2] / std::max(stats.seconds, 1e-9);
    const bool last = epoch + 1 == options_.epochs || result_.steps == planned_steps_;
    if (test_set_ != nullptr && (last || (options_.eval_every_epochs > 0 &&
                                          (epoch + 1) % options_.eval_every_epochs == 0))) {
      stats.test = Evaluate(model_, *test_set_, options_.eval_batch_size, comm_);
      stats.evaluated = true;
      result_.evaluated = true;
      result_.final_test = stats.test;
    }
    if (rank_ == 0) LogEpoch(stats);
    return stats;
  }

  // One optimiser step on global batch `s` of the epoch's `order`; adds this rank's loss sum,
  // hits and images to `local`.
  void Step(const std::vector<int64_t>& order, int epoch, int64_t s, double lr, Totals& local) {
    const int64_t first = s * options_.batch_size;
    const int64_t global_batch = std::min(options_.batch_size, n_ - first);
    const dist::Range mine = dist::ShardRange(global_batch, world_, rank_);
    std::vector<int64_t> indices;
    std::vector<uint64_t> seeds;
    for (int64_t k = first + mine.begin; k < first + mine.end; ++k) {
      indices.push_back(order[k]);
      seeds.push_back(
          dist::DeriveSeed(options_.seed, kAugmentStream, static_cast<uint64_t>(epoch * n_ + k)));
    }
    SetLearningRate(*optimizer_, lr);
    optimizer_->zero_grad();
    if (!indices.empty()) {
      const model::Batch batch = DecodeOrThrow(train_set_, indices, model_.config());
      const at::Tensor images =
          AugmentBatch(batch.images.to(param_options_), options_.augment, fill_, seeds);
      const at::Tensor labels = batch.labels.to(param_options_.device());
      const at::Tensor logits = model_.forward(images);  // [b, K]
      const at::Tensor loss_sum = at::cross_entropy_loss(logits, labels, {}, at::Reduction::Sum,
                                                         -100, options_.label_smoothing);
      (loss_sum / static_cast<double>(global_batch)).backward();
      local[0] += loss_sum.item<double>();
      local[1] += static_cast<double>(logits.argmax(1).eq(labels).sum().item<int64_t>());
      local[2] += static_cast<double>(indices.size());
    }
    if (world_ > 1) result_.comm_seconds += AllReduceGradients(*comm_, params_, sync_).comm_seconds;
    optimizer_->step();
  }

  // Seconds left at the training pace so far (evaluations excluded).
  double Eta(double seconds_so_far) const {
    return seconds_so_far / static_cast<double>(result_.steps) *
           static_cast<double>(planned_steps_ - result_.steps);
  }

  void LogProgress(int epoch, int64_t s, double lr, const Totals& global,
                   Clock::time_point epoch_start) const {
    const double in_epoch = SecondsSince(epoch_start);
    LOG(INFO) << "epoch " << epoch + 1 << "/" << options_.epochs << " step " << s + 1 << "/"
              << steps_per_epoch_ << "  loss " << std::fixed << std::setprecision(4)
              << Mean(global, 0) << "  train top-1 " << std::setprecision(2)
              << 100.0 * Mean(global, 1) << "%  lr " << std::scientific << std::setprecision(3)
              << lr << std::fixed << std::setprecision(0) << "  " << global[2] / in_epoch
              << " img/s  ETA " << base::FormatSeconds(Eta(train_seconds_ + in_epoch));
  }

  void LogEpoch(const EpochStats& stats) const {
    std::ostringstream line;
    line << std::fixed << "epoch " << stats.epoch << "/" << options_.epochs << " done in "
         << base::FormatSeconds(stats.seconds) << "  loss " << std::setprecision(4) << stats.train_loss
         << "  train top-1 " << std::setprecision(2) << stats.train_top1 << "%  "
         << std::setprecision(0) << stats.images_per_second << " img/s";
    if (stats.evaluated) {
      line << std::setprecision(2) << "  test top-1 " << stats.test.top1() << "% (loss "
           << std::setprecision(4) << stats.test.loss << ")";
    }
    line << "  ETA " << base::FormatSeconds(Eta(train_seconds_));
    LOG(INFO) << line.str();
  }

  model::VisionModel& model_;
  const model::ImageDataset& train_set_;
  const model::ImageDataset* test_set_;
  const TrainOptions& options_;
  dist::Communicator* comm_;
  const int world_, rank_;
  const int64_t n_;
  int64_t steps_per_epoch_ = 0;
  int64_t planned_steps_ = 0;
  TrainLrOptions lr_;
  std::vector<at::Tensor> params_;
  at::TensorOptions param_options_;
  dist::GradSyncOptions sync_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  at::Tensor fill_;           // [C]
  double train_seconds_ = 0;  // excludes evaluation, for the ETA
  TrainResult result_;
};

}  // namespace

TrainResult Train(model::VisionModel& model, const model::ImageDataset& train_set,
                  const model::ImageDataset* test_set, const TrainOptions& options,
                  dist::Communicator* comm) {
  ValidateTrainOptions(options);
  return Trainer(model, train_set, test_set, options, comm).Run();
}

}  // namespace psaq::train
