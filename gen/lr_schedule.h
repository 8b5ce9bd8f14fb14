// V1's learning-rate schedule for the image optimiser (docs/psaq_spec.md §1.6): linear warm-up
// then half a cosine, restarted at every "epoch".
//
// Within an epoch of `iterations` steps, at step it (0-based), as the official lr_cosine_policy
// (zkkli/PSAQ-ViT generate_data.py) computes it:
//   it <  warmup:  lr = base * (it + 1) / warmup
//   it >= warmup:  lr = base * 0.5 * (1 + cos(pi * (it - warmup) / (iterations - warmup)))
// So lr reaches base at it = warmup - 1 and at it = warmup, and the last step (iterations - 1)
// stops one cosine step short of 0. V1 runs 2 epochs of 500 steps with warmup 100; the schedule
// restarts at the second epoch while Adam's state carries over.
#pragma once

#include <cstdint>

namespace psaq::gen {

struct WarmupCosineOptions {
  // Peak learning rate. Official: 0.25 for Swin, 0.20 for DeiT. Must be >= 0.
  double base_lr = 0.2;
  // Linear warm-up steps per epoch. Official: 100. 0 disables the warm-up. Must be <= iterations.
  int64_t warmup = 100;
  // Steps per epoch (the schedule's period). Official: 500. Must be >= 1.
  int64_t iterations = 500;
};

// lr at step `it` of an epoch. REQUIRES (TORCH_CHECK): options valid, 0 <= it < iterations.
double WarmupCosineLr(const WarmupCosineOptions& options, int64_t it);

// lr at a global step counted from the start of the run (epochs of `iterations` steps, the
// schedule restarting each epoch): WarmupCosineLr(options, step % iterations). For resumes.
// REQUIRES (TORCH_CHECK): options valid, step >= 0.
double WarmupCosineLrAtStep(const WarmupCosineOptions& options, int64_t step);

}  // namespace psaq::gen
