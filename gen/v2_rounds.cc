#include "gen/v2_rounds.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <tuple>

#include "dist/base/scoped_seconds.h"
#include "gen/jitter.h"
#include "gen/lr_schedule.h"
#include "gen/random_streams.h"
#include "gen/v1_generator.h"
#include "model/data/preprocess.h"

namespace psaq::gen {
namespace {

// Entries of `tensors` under `prefix`, with the prefix removed.
std::map<std::string, at::Tensor> SubMap(const std::map<std::string, at::Tensor>& tensors,
                                         const std::string& prefix) {
  std::map<std::string, at::Tensor> out;
  for (auto it = tensors.lower_bound(prefix);
       it != tensors.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    out.emplace(it->first.substr(prefix.size()), it->second);
  }
  return out;
}

std::vector<at::Tensor> Images(const std::vector<ImageBatch>& batches) {
  std::vector<at::Tensor> out;
  for (const ImageBatch& b : batches) out.push_back(b.images.detach());
  return out;
}

std::string BatchPrefix(const ImageBatch& batch) {
  return "batch." + std::to_string(batch.first_index) + ".";
}

}  // namespace

V2Rounds::V2Rounds(model::VisionModel& teacher, quant::QuantizedModel& student,
                   const V2Options& options, uint64_t seed, dist::Communicator& comm,
                   const std::vector<std::pair<int64_t, int64_t>>& batches, int64_t global_samples)
    : V2Rounds(std::make_unique<ClassifierV2Models>(teacher, student, options.discrepancy,
                                                    options.weights.entropy != 0),
               nullptr, options, seed, comm, batches, global_samples) {}

V2Rounds::V2Rounds(V2Models& models, const V2Options& options, uint64_t seed,
                   dist::Communicator& comm,
                   const std::vector<std::pair<int64_t, int64_t>>& batches, int64_t global_samples)
    : V2Rounds(nullptr, &models, options, seed, comm, batches, global_samples) {}

V2Rounds::V2Rounds(std::unique_ptr<V2Models> owned, V2Models* models, const V2Options& options,
                   uint64_t seed, dist::Communicator& comm,
                   const std::vector<std::pair<int64_t, int64_t>>& batches, int64_t global_samples)
    : owned_models_(std::move(owned)),
      // owned_models_ is initialised first (declared first).
      models_(models != nullptr ? *models : *owned_models_),
      options_(options),
      seed_(seed),
      comm_(comm),
      global_samples_(global_samples),
      base_lr_(options.image_lr > 0 ? options.image_lr
                                    : ArchDefaultImageLr(models_.image_config().arch)),
      jitter_limit_(options.jitter_limit >= 0
                        ? options.jitter_limit
                        : ScaleJitterLimit(kJitterLimitEpoch1, models_.image_config().img_size())),
      kde_(models_.EntropyKde(options.kde)) {
  ValidateV2Options(options_);
  TORCH_CHECK(global_samples_ >= 1, "V2Rounds: global_samples must be >= 1");
  const model::ModelConfig& image_config = models_.image_config();
  std::tie(box_lo_, box_hi_) = model::NormalisedPixelRange(image_config);
  ImageBatchInit init;
  init.seed = seed_;
  init.init_std = options_.init_std;
  init.clamp_init = options_.clamp_init;
  init.tv_target_low = options_.tv_target_low;
  init.tv_target_high = options_.tv_target_high;
  init.adam = {base_lr_, options_.image_beta1, options_.image_beta2, options_.image_eps, 0.0};
  const at::Device device = models_.device();
  for (const auto& [first, count] : batches) {
    batches_.push_back(MakeImageBatch(image_config, first, count, init, device));
  }
  // Variant B trains nothing, but still goes through SelectTrainable so that no student
  // parameter requires grad.
  StudentParameterOptions train = options_.student_parameters;
  if (options_.student_update == StudentUpdate::kRecalibrateOnly) train = {false, false, false};
  trainable_ = models_.SelectTrainable(train);
  student_adam_ = std::make_unique<Adam>(
      trainable_, AdamOptions{options_.student_lr, options_.student_beta1, options_.student_beta2,
                              options_.student_eps, 0.0});
  // Collective: every rank starts from rank 0's student.
  timings_.grad_sync = models_.BroadcastStudent(comm_);
}

// The warm-up steps have their own warm-up-and-cosine over warmup_iterations; the sample steps
// count from the end of the warm-up, per round or over all rounds.
double V2Rounds::ImageLr(int64_t step) const {
  const int64_t warmup = options_.warmup_iterations;
  if (step < warmup) {
    return WarmupCosineLr({base_lr_, std::min(options_.image_warmup, warmup), warmup}, step);
  }
  const int64_t u = step - warmup;
  const int64_t period = ImageSchedulePeriod(options_);
  if (options_.image_schedule == ImageSchedule::kPerRound) {
    return WarmupCosineLr({base_lr_, options_.image_warmup, period}, u % period);
  }
  // u < period in a run of options_.rounds rounds; the min only keeps the argument in range.
  return WarmupCosineLr({base_lr_, options_.image_warmup, period}, std::min(u, period - 1));
}

void V2Rounds::Report(V2Progress progress) {
  if (progress_) progress_(progress);
}

void V2Rounds::ImageStep(ImageBatch& batch, bool warmup, int64_t round, int64_t phase_iteration,
                         int64_t phase_total) {
  const int64_t t = batch.iteration;
  batch.adam->set_lr(ImageLr(t));
  std::mt19937_64 rng = StepRng(seed_, kV2SampleStream, batch.first_index, t);
  at::Tensor x =
      ApplyJitter(batch.images, DrawJitter(rng, {jitter_limit_, options_.flip_probability}));
  TeacherPass teacher = models_.Teacher(x, options_.weights.entropy != 0);
  LossTerms loss;
  if (warmup) {
    // No cross-entropy (V2 has no labels): V1Loss never reads the logits then.
    loss = V1Loss(teacher.av_means, at::Tensor(), at::Tensor(), x, batch.tv_target,
                  {options_.weights.entropy, 0.0, options_.weights.tv}, kde_);
  } else {
    at::Tensor d;
    if (options_.weights.adversarial != 0) d = models_.Discrepancy(x, teacher.targets);
    loss = V2SampleLoss(teacher.av_means, x, batch.tv_target, d, options_.weights, kde_);
  }
  // W.r.t. the images only (as in V1): the student's gradients come from StudentGradients alone.
  at::Tensor grad = torch::autograd::grad({loss.total}, {batch.images}, {}, false, false, false)[0];
  teacher = TeacherPass();
  loss.total = loss.total.detach();
  batch.adam->Step({grad});
  if (options_.clamp_to_pixel_box) ClampToBox(batch.images, box_lo_, box_hi_);
  batch.iteration = t + 1;
  timings_.image_sample_steps += batch.size();
  Report({warmup ? "warmup" : "sample", round, batch.first_index, phase_iteration + 1, phase_total,
          loss});
}

void V2Rounds::WarmupAndCalibrate() {
  TORCH_CHECK(completed_rounds_ == -1, "V2Rounds: already calibrated");
  {
    base::ScopedSeconds timer(timings_.warmup_seconds);
    for (ImageBatch& batch : batches_) {
      for (int64_t i = batch.iteration; i < options_.warmup_iterations; ++i) {
        ImageStep(batch, true, 0, i, options_.warmup_iterations);
      }
    }
  }
  base::ScopedSeconds timer(timings_.calibration_seconds);
  models_.Calibrate(Images(batches_), comm_, false);
  completed_rounds_ = 0;
}

double V2Rounds::StudentGradients(int64_t round, int64_t iteration) {
  const bool jitter = options_.student_jitter;
  // Each rank back-propagates size / N times its sum of D; SyncStudentGradients then averages
  // over the ranks, which leaves the gradient of the mean of D over all N samples.
  const double scale = static_cast<double>(comm_.size()) / static_cast<double>(global_samples_);
  if (teacher_cache_.size() != batches_.size()) teacher_cache_.assign(batches_.size(), {});
  // backward() accumulates over the batches below: start from no gradient.
  for (auto& [name, p] : trainable_) p.mutable_grad() = at::Tensor();
  at::Tensor d_sum = at::zeros({1}, at::kDouble);
  for (size_t k = 0; k < batches_.size(); ++k) {
    const ImageBatch& batch = batches_[k];
    at::Tensor x = batch.images.detach();
    if (jitter) {
      // Keyed by the student step's index over the whole run, so a resume draws the same jitter.
      std::mt19937_64 rng = StepRng(seed_, kV2StudentStream, batch.first_index,
                                    (round - 1) * options_.student_iterations + iteration);
      x = ApplyJitter(x, DrawJitter(rng, {jitter_limit_, options_.flip_probability}));
    }
    // The teacher's targets; without jitter X is fixed for the whole student step: cached.
    std::vector<at::Tensor> teacher = teacher_cache_[k];
    if (teacher.empty()) {
      at::NoGradGuard no_grad;
      teacher = models_.Teacher(x, false).targets;
      if (!jitter) teacher_cache_[k] = teacher;
    }
    at::Tensor local = models_.Discrepancy(x, teacher).sum();
    (local * scale).backward();
    d_sum += local.detach().to(at::kCPU, at::kDouble);
    timings_.student_sample_steps += batch.size();
  }
  std::vector<at::Tensor> params;
  for (auto& entry : trainable_) params.push_back(entry.second);
  const dist::GradSyncStats stats = SyncStudentGradients(comm_, params);
  timings_.grad_sync.buckets += stats.buckets;
  timings_.grad_sync.bytes += stats.bytes;
  timings_.grad_sync.seconds += stats.seconds;
  timings_.grad_sync.comm_seconds += stats.comm_seconds;
  // The global mean D (one scalar all-reduce), for the progress report. MPI reduces CPU
  // tensors, NCCL device tensors.
  at::Tensor global = d_sum.to(comm_.backend() == "mpi" ? at::Device(at::kCPU) : models_.device());
  comm_.AllReduce(global, dist::ReduceOp::kSum);
  return global.cpu().item<double>() / static_cast<double>(global_samples_);
}

void V2Rounds::StudentStep(int64_t round) {
  teacher_cache_.clear();  // X changed in this round's sample step
  for (int64_t s = 0; s < options_.student_iterations; ++s) {
    LossTerms loss;
    loss.discrepancy = StudentGradients(round, s);
    loss.total_value = loss.discrepancy;
    student_adam_->Step();
    Report({"student", round, -1, s + 1, options_.student_iterations, loss});
  }
  // Not kept until the next round: they would only hold memory.
  for (auto& [name, p] : trainable_) p.mutable_grad() = at::Tensor();
  teacher_cache_.clear();
}

void V2Rounds::RunRound() {
  TORCH_CHECK(completed_rounds_ >= 0 && completed_rounds_ < options_.rounds,
              "V2Rounds::RunRound: ", completed_rounds_, " of ", options_.rounds,
              " rounds completed (calibrate first)");
  const int64_t round = completed_rounds_ + 1;
  {
    base::ScopedSeconds timer(timings_.sample_seconds);
    for (ImageBatch& batch : batches_) {
      for (int64_t i = 0; i < options_.sample_iterations; ++i) {
        ImageStep(batch, false, round, i, options_.sample_iterations);
      }
    }
  }
  if (!trainable_.empty() && options_.student_iterations > 0) {
    base::ScopedSeconds timer(timings_.student_seconds);
    StudentStep(round);
  }
  // After the student step, so the ranges fit both this round's images and the updated weights.
  if (options_.recalibrate_each_round) {
    base::ScopedSeconds timer(timings_.calibration_seconds);
    models_.Calibrate(Images(batches_), comm_, true);
  }
  completed_rounds_ = round;
}

std::vector<std::pair<std::string, at::Tensor>> V2Rounds::ExportSharedState() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (auto& [name, t] : models_.ExportStudent()) out.emplace_back("student." + name, t);
  for (auto& entry : student_adam_->ExportState("student_adam.")) out.push_back(entry);
  out.emplace_back("v2.completed_rounds", at::scalar_tensor(completed_rounds_, at::kLong));
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> V2Rounds::ExportRankState() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const ImageBatch& batch : batches_) {
    for (auto& entry : ExportImageBatch(batch, BatchPrefix(batch))) out.push_back(entry);
  }
  return out;
}

void V2Rounds::ImportState(const std::map<std::string, at::Tensor>& shared,
                           const std::map<std::string, at::Tensor>& rank,
                           const std::string& source) {
  auto rounds = shared.find("v2.completed_rounds");
  if (rounds == shared.end() || rounds->second.numel() != 1 ||
      rounds->second.scalar_type() != at::kLong) {
    throw std::runtime_error(source + ": missing or invalid 'v2.completed_rounds'");
  }
  const int64_t completed = rounds->second.item<int64_t>();
  if (completed < 0 || completed > options_.rounds) {
    throw std::runtime_error(source + ": 'v2.completed_rounds' = " + std::to_string(completed) +
                             " is outside [0, " + std::to_string(options_.rounds) + "]");
  }
  for (ImageBatch& batch : batches_) ImportImageBatch(batch, rank, BatchPrefix(batch), source);
  // completed_rounds >= 0: the state was saved after calibration, which leaves the student
  // quantized (ImportStudent sets that mode).
  models_.ImportStudent(SubMap(shared, "student."), source);
  student_adam_->ImportState(shared, "student_adam.", source);
  completed_rounds_ = completed;
}

}  // namespace psaq::gen
