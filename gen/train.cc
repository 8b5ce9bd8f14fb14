#include "gen/train.h"

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

#include "dist/logging.h"
#include "dist/partition.h"
#include "model/preprocess.h"

namespace psaq::gen {
namespace {

// Random streams of a training job (dist::DeriveSeed's `stream`).
constexpr uint64_t kOrderStream = 0x7472616e6f726472ULL;    // "tranordr"
constexpr uint64_t kAugmentStream = 0x7472616e61756720ULL;  // "tranaug "

using Clock = std::chrono::steady_clock;
double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

[[noreturn]] void Invalid(const std::string& field, const std::string& value,
                          const std::string& rule) {
  throw std::invalid_argument("training options: " + field + " = " + value + " " + rule);
}

// The device collectives run on: the model's for NCCL, the CPU for MPI.
at::Device CollectiveDevice(const dist::Communicator& comm, const at::Device& model_device) {
  return comm.backend() == "mpi" ? at::Device(at::kCPU) : model_device;
}

// Sums `values` (float64) over ranks in place when there is more than one.
void SumOverRanks(std::vector<double>& values, dist::Communicator* comm,
                  const at::Device& model_device) {
  if (comm == nullptr || comm->size() == 1) return;
  at::Tensor t = at::tensor(values, at::TensorOptions().dtype(at::kDouble))
                     .to(CollectiveDevice(*comm, model_device));
  comm->AllReduce(t, dist::ReduceOp::kSum);
  t = t.cpu();
  for (size_t i = 0; i < values.size(); ++i) values[i] = t[static_cast<int64_t>(i)].item<double>();
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

std::string FormatSeconds(double s) {
  const auto total = static_cast<int64_t>(std::llround(s));
  std::ostringstream out;
  out << total / 3600 << ":" << std::setw(2) << std::setfill('0') << (total / 60) % 60 << ":"
      << std::setw(2) << total % 60;
  return out.str();
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

TrainResult Train(model::VisionModel& model, const model::ImageDataset& train_set,
                  const model::ImageDataset* test_set, const TrainOptions& options,
                  dist::Communicator* comm) {
  ValidateTrainOptions(options);
  const int64_t n = train_set.size();
  if (options.batch_size > n) {
    Invalid("batch_size", std::to_string(options.batch_size),
            "is larger than the training set (" + std::to_string(n) + " images)");
  }
  const int64_t steps_per_epoch = options.drop_last
                                      ? n / options.batch_size
                                      : (n + options.batch_size - 1) / options.batch_size;
  TrainLrOptions lr = options.lr;
  lr.total_steps = steps_per_epoch * options.epochs;
  if (options.warmup_epochs > 0) {
    lr.warmup_steps = std::llround(options.warmup_epochs * static_cast<double>(steps_per_epoch));
  }
  ValidateTrainLr(lr);

  const auto start = Clock::now();
  const int world = comm ? comm->size() : 1, rank = comm ? comm->rank() : 0;
  const bool distributed = world > 1;
  std::vector<at::Tensor> params;
  for (const at::Tensor& p : model.parameters()) {
    if (p.requires_grad()) params.push_back(p);
  }
  TORCH_CHECK(!params.empty(), "Train: the model has no trainable parameters");
  const at::TensorOptions param_options = params.front().options();
  dist::GradSyncOptions sync = options.grad_sync;
  sync.reduce = dist::ReduceOp::kSum;
  TrainResult result;
  if (distributed) result.comm_seconds += BroadcastParameters(*comm, params, 0, sync).comm_seconds;
  std::unique_ptr<torch::optim::AdamW> optimizer = MakeAdamW(model, options.adamw);
  // Constant padding fills with black: the normalised value of pixel 0, per channel.
  const at::Tensor fill = model::NormalisedPixelRange(model.config()).first.to(param_options);

  if (rank == 0) {
    LOG(INFO) << "training " << model.config().name << " on " << train_set.Describe() << ": "
              << options.epochs << " epochs x " << steps_per_epoch << " steps of "
              << options.batch_size << " images over " << world << " rank(s), "
              << LrShapeName(lr.shape) << " lr peak " << lr.peak_lr << ", warm-up "
              << lr.warmup_steps << " steps";
  }
  double train_seconds = 0;  // excludes evaluation, for the ETA
  const int64_t planned_steps =
      options.max_steps > 0 ? std::min(options.max_steps, lr.total_steps) : lr.total_steps;
  for (int epoch = 0; epoch < options.epochs && result.steps < planned_steps; ++epoch) {
    model.train();
    const auto epoch_start = Clock::now();
    const std::vector<int64_t> order = EpochOrder(n, options.seed, epoch);
    EpochStats stats;
    stats.epoch = epoch + 1;
    std::vector<double> local = {0, 0, 0};  // loss sum, correct, images (this rank, this epoch)
    std::vector<double> global = local;
    for (int64_t s = 0; s < steps_per_epoch && result.steps < planned_steps; ++s) {
      const int64_t first = s * options.batch_size;
      const int64_t global_batch = std::min(options.batch_size, n - first);
      const dist::Range mine = dist::ShardRange(global_batch, world, rank);
      std::vector<int64_t> indices;
      std::vector<uint64_t> seeds;
      for (int64_t k = first + mine.begin; k < first + mine.end; ++k) {
        indices.push_back(order[k]);
        seeds.push_back(
            dist::DeriveSeed(options.seed, kAugmentStream, static_cast<uint64_t>(epoch * n + k)));
      }
      stats.lr = TrainLrAtStep(lr, result.steps);
      SetLearningRate(*optimizer, stats.lr);
      optimizer->zero_grad();
      if (!indices.empty()) {
        const model::Batch batch = DecodeOrThrow(train_set, indices, model.config());
        const at::Tensor images =
            AugmentBatch(batch.images.to(param_options), options.augment, fill, seeds);
        const at::Tensor labels = batch.labels.to(param_options.device());
        const at::Tensor logits = model.forward(images);  // [b, K]
        const at::Tensor loss_sum = at::cross_entropy_loss(logits, labels, {}, at::Reduction::Sum,
                                                           -100, options.label_smoothing);
        (loss_sum / static_cast<double>(global_batch)).backward();
        local[0] += loss_sum.item<double>();
        local[1] += static_cast<double>(logits.argmax(1).eq(labels).sum().item<int64_t>());
        local[2] += static_cast<double>(indices.size());
      }
      if (distributed) result.comm_seconds += AllReduceGradients(*comm, params, sync).comm_seconds;
      optimizer->step();
      ++result.steps;
      ++stats.steps;

      const bool epoch_end = s + 1 == steps_per_epoch || result.steps == planned_steps;
      const bool log_now =
          epoch_end || (options.log_every_steps > 0 && stats.steps % options.log_every_steps == 0);
      if (!log_now) continue;
      global = local;
      SumOverRanks(global, comm, param_options.device());
      const double mean_loss = global[0] / std::max(global[2], 1.0);
      if (!std::isfinite(mean_loss)) {
        throw std::runtime_error("training diverged: the mean loss of epoch " +
                                 std::to_string(epoch + 1) + " is " + std::to_string(mean_loss) +
                                 " at step " + std::to_string(s + 1) +
                                 " (lower the learning rate)");
      }
      const double seconds = train_seconds + SecondsSince(epoch_start);
      if (rank == 0 && !epoch_end) {
        const double eta =
            seconds / result.steps * static_cast<double>(planned_steps - result.steps);
        LOG(INFO) << "epoch " << epoch + 1 << "/" << options.epochs << " step " << s + 1 << "/"
                  << steps_per_epoch << "  loss " << std::fixed << std::setprecision(4) << mean_loss
                  << "  train top-1 " << std::setprecision(2)
                  << 100.0 * global[1] / std::max(global[2], 1.0) << "%  lr " << std::scientific
                  << std::setprecision(3) << stats.lr << std::fixed << std::setprecision(0) << "  "
                  << global[2] / SecondsSince(epoch_start) << " img/s  ETA " << FormatSeconds(eta);
      }
    }
    stats.seconds = SecondsSince(epoch_start);
    train_seconds += stats.seconds;
    stats.images = static_cast<int64_t>(global[2]);
    stats.train_loss = global[0] / std::max(global[2], 1.0);
    stats.train_top1 = 100.0 * global[1] / std::max(global[2], 1.0);
    stats.images_per_second = global[2] / std::max(stats.seconds, 1e-9);
    const bool last = epoch + 1 == options.epochs || result.steps == planned_steps;
    if (test_set != nullptr &&
        (last || (options.eval_every_epochs > 0 && (epoch + 1) % options.eval_every_epochs == 0))) {
      stats.test = Evaluate(model, *test_set, options.eval_batch_size, comm);
      stats.evaluated = true;
      result.evaluated = true;
      result.final_test = stats.test;
    }
    if (rank == 0) {
      std::ostringstream line;
      line << std::fixed << "epoch " << stats.epoch << "/" << options.epochs << " done in "
           << FormatSeconds(stats.seconds) << "  loss " << std::setprecision(4) << stats.train_loss
           << "  train top-1 " << std::setprecision(2) << stats.train_top1 << "%  "
           << std::setprecision(0) << stats.images_per_second << " img/s";
      if (stats.evaluated) {
        line << std::setprecision(2) << "  test top-1 " << stats.test.top1() << "% (loss "
             << std::setprecision(4) << stats.test.loss << ")";
      }
      line << "  ETA "
           << FormatSeconds(train_seconds / result.steps *
                            static_cast<double>(planned_steps - result.steps));
      LOG(INFO) << line.str();
    }
    result.epochs.push_back(stats);
  }
  model.eval();
  result.seconds = SecondsSince(start);
  return result;
}

}  // namespace psaq::gen
