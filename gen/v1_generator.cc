#include "gen/v1_generator.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <tuple>

#include "gen/lr_schedule.h"
#include "gen/random_streams.h"
#include "model/data/preprocess.h"

namespace psaq::gen {

void ApplyOfficialV1(V1Options& options) { options.weights.tv = kOfficialV1TvWeight; }

void ValidateV1Options(const V1Options& o) {
  TORCH_CHECK(o.batch_size >= 1, "V1Options.batch_size must be >= 1, got ", o.batch_size);
  TORCH_CHECK(o.epochs >= 1, "V1Options.epochs must be >= 1, got ", o.epochs);
  TORCH_CHECK(o.iterations_per_epoch >= 1, "V1Options.iterations_per_epoch must be >= 1, got ",
              o.iterations_per_epoch);
  TORCH_CHECK(o.warmup_iterations >= 0 && o.warmup_iterations <= o.iterations_per_epoch,
              "V1Options.warmup_iterations must be in [0, iterations_per_epoch], got ",
              o.warmup_iterations);
  TORCH_CHECK(o.lr >= 0, "V1Options.lr must be >= 0 (0 = architecture default), got ", o.lr);
  for (int64_t limit : o.jitter_limits) {
    TORCH_CHECK(limit >= 0, "V1Options.jitter_limits must be >= 0, got ", limit);
  }
  TORCH_CHECK(o.flip_probability >= 0 && o.flip_probability <= 1,
              "V1Options.flip_probability must be in [0, 1], got ", o.flip_probability);
  TORCH_CHECK(o.tv_target_low >= 0 && o.tv_target_low <= o.tv_target_high,
              "V1Options.tv_target_low/high must satisfy 0 <= low <= high");
  TORCH_CHECK(o.init_std >= 0, "V1Options.init_std must be >= 0, got ", o.init_std);
  // lr 0 here: o.lr = 0 means "the architecture's default", checked above.
  ValidateAdamOptions({0.0, o.beta1, o.beta2, o.adam_eps, 0.0});
}

nlohmann::json V1OptionsToJson(const V1Options& o) {
  return {{"batch_size", o.batch_size},
          {"epochs", o.epochs},
          {"iterations_per_epoch", o.iterations_per_epoch},
          {"warmup_iterations", o.warmup_iterations},
          {"lr", o.lr},
          {"beta1", o.beta1},
          {"beta2", o.beta2},
          {"adam_eps", o.adam_eps},
          {"jitter_limits", o.jitter_limits},
          {"flip_probability", o.flip_probability},
          {"w_entropy", o.weights.entropy},
          {"w_cross_entropy", o.weights.cross_entropy},
          {"w_tv", o.weights.tv},
          {"tv_target_low", o.tv_target_low},
          {"tv_target_high", o.tv_target_high},
          {"init_std", o.init_std},
          {"clamp_to_pixel_box", o.clamp_to_pixel_box},
          {"kde_bandwidth", o.kde.bandwidth},
          {"kde_grid_points", o.kde.grid_points},
          {"kde_density_floor", o.kde.density_floor}};
}

double ArchDefaultImageLr(model::Arch arch) { return arch == model::Arch::kSwin ? 0.25 : 0.20; }

int64_t V1JitterLimit(const V1Options& options, int64_t epoch, int64_t image_size) {
  if (!options.jitter_limits.empty()) {
    const size_t i = std::min(static_cast<size_t>(epoch), options.jitter_limits.size() - 1);
    return options.jitter_limits[i];
  }
  return ScaleJitterLimit(epoch == 0 ? kJitterLimitEpoch1 : kJitterLimitEpoch2, image_size);
}

V1Generator::V1Generator(model::VisionModel& teacher, const V1Options& options, uint64_t seed)
    : teacher_(teacher),
      options_(options),
      seed_(seed),
      base_lr_(options.lr > 0 ? options.lr : ArchDefaultImageLr(teacher.config().arch)),
      // The block features serve only the entropy term: with its weight 0 none are captured.
      capture_(teacher, FeatureCaptureOptions{options.weights.entropy != 0, false}) {
  ValidateV1Options(options_);
  std::tie(box_lo_, box_hi_) = model::NormalisedPixelRange(teacher_.config());
}

ImageBatch V1Generator::InitBatch(int64_t first_index, int64_t count) const {
  ImageBatchInit init;
  init.seed = seed_;
  init.init_std = options_.init_std;
  init.tv_target_low = options_.tv_target_low;
  init.tv_target_high = options_.tv_target_high;
  init.with_labels = options_.weights.cross_entropy != 0;
  init.adam = {base_lr_, options_.beta1, options_.beta2, options_.adam_eps, 0.0};
  // The images live where the teacher does (its first parameter's device; CPU for a model
  // without parameters).
  at::Device device = at::kCPU;
  for (const auto& p : teacher_.parameters()) {
    device = p.device();
    break;
  }
  return MakeImageBatch(teacher_.config(), first_index, count, init, device);
}

int64_t V1Generator::total_iterations() const {
  return options_.epochs * options_.iterations_per_epoch;
}

V1Progress V1Generator::Step(ImageBatch& batch) {
  TORCH_CHECK(!Done(batch), "V1Generator::Step: batch ", batch.first_index, " is complete");
  const int64_t it = batch.iteration;
  const int64_t epoch = it / options_.iterations_per_epoch;
  const WarmupCosineOptions schedule{base_lr_, options_.warmup_iterations,
                                     options_.iterations_per_epoch};
  const double lr = WarmupCosineLrAtStep(schedule, it);
  batch.adam->set_lr(lr);

  // A fresh generator per (batch, step) rather than one running stream: a resumed batch, or the
  // same batch on another rank, draws the same jitter.
  std::mt19937_64 rng = StepRng(seed_, kV1JitterStream, batch.first_index, it);
  const JitterOptions jitter{V1JitterLimit(options_, epoch, teacher_.config().img_size()),
                             options_.flip_probability};
  at::Tensor x = ApplyJitter(batch.images, DrawJitter(rng, jitter));
  at::Tensor logits = capture_.Forward(x);
  V1Progress progress;
  progress.loss = V1Loss(capture_.av_means(), logits, batch.labels, x, batch.tv_target,
                         options_.weights, options_.kde);
  // grad() w.r.t. the images only: backward() would also accumulate gradients into the
  // teacher's parameters, which are not optimised.
  at::Tensor grad =
      torch::autograd::grad({progress.loss.total}, {batch.images}, {}, false, false, false)[0];
  // Drop the captured features and the loss's graph now rather than at the next step, so they
  // are not held during the Adam step or by the caller's progress record.
  capture_.Clear();
  progress.loss.total = progress.loss.total.detach();
  batch.adam->Step({grad});
  if (options_.clamp_to_pixel_box) ClampToBox(batch.images, box_lo_, box_hi_);
  batch.iteration = it + 1;

  progress.first_index = batch.first_index;
  progress.iteration = batch.iteration;
  progress.total_iterations = total_iterations();
  progress.lr = lr;
  return progress;
}

bool V1Generator::Run(ImageBatch& batch, const V1Hooks& hooks) {
  while (!Done(batch)) {
    const V1Progress progress = Step(batch);
    if (hooks.on_iteration) hooks.on_iteration(progress);
    bool checkpointed = false;
    const bool due = hooks.checkpoint_every > 0 && batch.iteration % hooks.checkpoint_every == 0;
    if (hooks.on_checkpoint && (due || Done(batch))) {
      hooks.on_checkpoint(batch);
      checkpointed = true;
    }
    if (hooks.should_stop && hooks.should_stop()) {
      // Stopping mid-batch: save it first (unless this step just did) so a restart resumes here.
      if (hooks.on_checkpoint && !checkpointed) hooks.on_checkpoint(batch);
      return Done(batch);
    }
  }
  return true;
}

}  // namespace psaq::gen
