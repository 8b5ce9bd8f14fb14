// Per-step learning-rate schedules for training a model from scratch (launch/train/train.h). Pure
// functions of the step: a resumed or data-parallel run gets the same value on every rank.
// (The image optimiser of sample generation has its own schedule, gen/lr_schedule.h.)
//
// kWarmupCosine (timm's CosineLRScheduler with per-step updates, warm-up from 0, no restarts):
//   step <  warmup:  lr = peak * (step + 1) / warmup
//   step >= warmup:  lr = final + (peak - final) * (1 + cos(pi * t)) / 2,
//                    t = (step - warmup) / (total - warmup)
//   so lr reaches peak at the last warm-up step and at step == warmup, and decreases to just above
//   `final` at the last step (total - 1).
//
// kOneCycle (PyTorch's OneCycleLR, anneal_strategy "cos", two phases, three_phase false):
//   initial = peak / div_factor, floor = initial / final_div_factor,
//   rise = pct_start * total - 1 (a real number; the step where lr == peak),
//   step <= rise:  lr = cos_anneal(initial, peak, step / rise)
//   step >  rise:  lr = cos_anneal(peak, floor, (step - rise) / (total - 1 - rise))
//   with cos_anneal(a, b, p) = b + (a - b) * (1 + cos(pi * p)) / 2, so lr == floor at the last
//   step. `warmup_steps` and `final_lr` are not used.
#pragma once

#include <cstdint>
#include <string>

namespace psaq::train {

enum class LrShape { kWarmupCosine, kOneCycle };

// "cosine" / "one_cycle", and back (throws std::invalid_argument listing both for another name).
std::string LrShapeName(LrShape shape);
LrShape ParseLrShape(const std::string& name);

struct TrainLrOptions {
  // Which curve (see above). Default kWarmupCosine.
  LrShape shape = LrShape::kWarmupCosine;
  // The largest learning rate, reached at the end of the warm-up. Default 1e-3 (AdamW on small
  // ViTs). Must be > 0.
  double peak_lr = 1e-3;
  // Steps in the whole run (epochs * steps per epoch). Must be >= 1.
  int64_t total_steps = 1;
  // kWarmupCosine: linear warm-up steps, 0 <= warmup_steps < total_steps. Default 0.
  int64_t warmup_steps = 0;
  // kWarmupCosine: the value the cosine decays towards, 0 <= final_lr <= peak_lr. Default 1e-5.
  double final_lr = 1e-5;
  // kOneCycle: share of the run spent rising to the peak, in (0, 1); PyTorch's default 0.3. The
  // rise must last at least one step: pct_start * total_steps > 1.
  double pct_start = 0.3;
  // kOneCycle: initial = peak / div_factor (PyTorch's default 25), floor = initial /
  // final_div_factor (PyTorch's default 1e4). Both must be >= 1.
  double div_factor = 25.0;
  double final_div_factor = 1e4;
};

// Throws std::invalid_argument naming the field and its value when `options` break a rule above.
void ValidateTrainLr(const TrainLrOptions& options);

// The learning rate at 0-based `step`. REQUIRES: options valid (ValidateTrainLr throws otherwise),
// 0 <= step < total_steps (TORCH_CHECK).
double TrainLrAtStep(const TrainLrOptions& options, int64_t step);

}  // namespace psaq::train
