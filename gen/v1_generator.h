// PSAQ-ViT V1 sample generation (docs/psaq_spec.md §1.2-1.6) for one batch of samples and a float
// teacher (the official settings but one, see V1Options::weights and ApplyOfficialV1): X ~ N(0, 1) is optimised by Adam for epochs x iterations steps; each step jitters X
// (roll + flip), runs the teacher, minimises V1's loss (gen/objective.h) with respect to X and
// clamps X to the normalised pixel box.
//
// Randomness is counter-based (gen/random_streams.h): noise and labels per global sample index,
// the TV target per batch (its first global index), jitter per (first index, step). A batch is
// therefore the same whichever rank makes it, and resuming needs only the batch's iteration
// counter, X and the Adam state (gen/image_batch.h ExportImageBatch).
//
//   V1Generator gen(teacher, options, seed);
//   ImageBatch batch = gen.InitBatch(first_index, 32);
//   gen.Run(batch, hooks);                 // or: while (!gen.Done(batch)) gen.Step(batch);
//   at::Tensor samples = batch.images.detach();
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "gen/feature_capture.h"
#include "gen/image_batch.h"
#include "gen/jitter.h"
#include "gen/kde_options.h"
#include "gen/objective.h"
#include "model/vision_model.h"

namespace psaq::gen {

struct V1Options {
  // Samples per generation batch (one Adam problem; the KDE grid and TV span the batch).
  // Official 32. The job splits its samples into batches of this size.
  int64_t batch_size = 32;
  // "Epochs" of the schedule and steps per epoch. Official 2 x 500.
  int64_t epochs = 2;
  int64_t iterations_per_epoch = 500;
  // Linear warm-up steps at the start of each epoch, then half a cosine (gen/lr_schedule.h).
  // Official 100. Must be <= iterations_per_epoch.
  int64_t warmup_iterations = 100;
  // Peak image learning rate; 0 = the architecture's official value (ArchDefaultImageLr:
  // 0.25 Swin, 0.20 ViT/DeiT).
  double lr = 0;
  // Image Adam. Official betas (0.5, 0.9), eps 1e-8.
  double beta1 = 0.5;
  double beta2 = 0.9;
  double adam_eps = 1e-8;
  // Roll limit in pixels per epoch (the last entry applies to later epochs). Empty (default) =
  // the official 15 / 30 at 224 px scaled to the model's image size (ScaleJitterLimit), e.g.
  // 2 / 4 at 28 px. Set to override, e.g. {3, 6}.
  std::vector<int64_t> jitter_limits;
  // Probability of a horizontal flip of the whole batch per step. Official 0.5.
  double flip_probability = 0.5;
  // Loss weights w_ent, w_ce, w_tv. Official 1 / 1 / 0.05. DEPARTS FROM THE PAPER: w_tv is 0
  // here (ApplyOfficialV1 restores 0.05). The official TV target, made for 224 px ImageNet
  // batches and scaled to the batch by sqrt(numel) (gen/image_prior.h), is about half the TV of
  // real 28 px Fashion-MNIST images (181-217 against 340-381 for batches of 32), and matching it
  // compresses the samples' contrast: the shipped Swin's V1 samples ended below pixel 0.49, the
  // input quantizer calibrated on them clipped 32% of the test images' pixels, and W8/A8 lost
  // 9 points to real-image calibration; with w_tv 0 the samples span the pixel box and W8/A8 is
  // within half a point of real images (docs/results.md).
  V1LossWeights weights{1.0, 1.0, 0.0};
  // TV target range for a 32 x 3 x 224 x 224 batch, scaled by sqrt(numel ratio) to the batch.
  // Official U(2500, 3000).
  double tv_target_low = 2500;
  double tv_target_high = 3000;
  // Standard deviation of the initial noise (normalised space). Official 1.
  double init_std = 1.0;
  // Clamp X to the normalised pixel box after every step. Official true.
  bool clamp_to_pixel_box = true;
  // The KDE of the entropy term. Official h = 0.01, 10 grid points, floor 1e-4.
  KdeOptions kde;
};

// Sets every field on which psaq's defaults depart from the official PSAQ-ViT code back to the
// official value (today: weights.tv = 0.05), leaving the others as they are. `psaq --v1_official`.
void ApplyOfficialV1(V1Options& options);
// The official TV weight.
inline constexpr double kOfficialV1TvWeight = 0.05;

// Throws c10::Error naming the field for an invalid value.
void ValidateV1Options(const V1Options& options);
// Every field, by name (for reports, sample metadata and the checkpoint's option check).
nlohmann::json V1OptionsToJson(const V1Options& options);

// PSAQ's image learning rate: 0.25 for Swin, 0.20 for ViT/DeiT.
double ArchDefaultImageLr(model::Arch arch);

// The roll limit (pixels) of epoch `epoch` (0-based) for `image_size` px images.
int64_t V1JitterLimit(const V1Options& options, int64_t epoch, int64_t image_size);

// What a step reports.
struct V1Progress {
  int64_t first_index = 0;       // the batch
  int64_t iteration = 0;         // steps completed (1 after the first)
  int64_t total_iterations = 0;  // epochs * iterations_per_epoch
  double lr = 0;
  LossTerms loss;  // the loss of the step just taken (before the update)
};

struct V1Hooks {
  // Called after every step.
  std::function<void(const V1Progress&)> on_iteration;
  // Called every `checkpoint_every` steps (0 = never) and when the batch completes.
  int64_t checkpoint_every = 0;
  std::function<void(const ImageBatch&)> on_checkpoint;
  // Polled after every step; true stops the run (after an on_checkpoint call, unless one was
  // just made) and Run returns false.
  std::function<bool()> should_stop;
};

class V1Generator {
 public:
  // `teacher`: float, eval mode, on the device the batches live on; not modified (its tap
  // observer is attached during each step only). REQUIRES (TORCH_CHECK): valid options.
  V1Generator(model::VisionModel& teacher, const V1Options& options, uint64_t seed);

  // The initial state of the batch of `count` samples from global index `first_index`, on the
  // teacher's device.
  ImageBatch InitBatch(int64_t first_index, int64_t count) const;

  int64_t total_iterations() const;
  bool Done(const ImageBatch& batch) const { return batch.iteration >= total_iterations(); }

  // One optimiser step (step number batch.iteration, then incremented). REQUIRES: !Done(batch).
  V1Progress Step(ImageBatch& batch);

  // Steps until Done or until hooks.should_stop; returns true when the batch is complete.
  bool Run(ImageBatch& batch, const V1Hooks& hooks = {});

  const V1Options& options() const { return options_; }
  double base_lr() const { return base_lr_; }

 private:
  model::VisionModel& teacher_;
  V1Options options_;
  uint64_t seed_;
  double base_lr_;
  at::Tensor box_lo_;  // float32 [C] on the CPU
  at::Tensor box_hi_;
  FeatureCapture capture_;
};

}  // namespace psaq::gen
