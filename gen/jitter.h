// DeepInversion's random jitter of the synthetic batch, as PSAQ-ViT V1 applies it every step
// (docs/psaq_spec.md §1.6; official zkkli/PSAQ-ViT generate_data.py):
//   1. o = uniform integer in [-lim, lim]; the whole batch is rolled circularly by o pixels along
//      H and by the same o along W (torch.roll(x, shifts=(o, o), dims=(2, 3)));
//   2. with probability 0.5 the whole batch is flipped horizontally (along W), after the roll.
// The official limits are lim = 15 in epoch 1 and 30 in epoch 2, at 224 x 224.
//
// Randomness: every draw comes from a std::mt19937_64 owned by the caller (never a global RNG),
// two 64-bit draws per step in a fixed order (offset, then flip), mapped to values by fixed
// integer arithmetic rather than std:: distributions (whose algorithms differ between standard
// libraries). A seed thus gives the same jitter sequence on every rank, platform and resume.
// (Python's `random` cannot be matched bit for bit; only the distribution is the official one.)
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <random>

namespace psaq::gen {

// Official roll limits at the official image size.
inline constexpr int64_t kJitterReferenceSize = 224;
inline constexpr int64_t kJitterLimitEpoch1 = 15;
inline constexpr int64_t kJitterLimitEpoch2 = 30;

struct JitterOptions {
  // lim: the roll offset is drawn uniformly from [-max_offset, max_offset] pixels. 0 disables
  // the roll. Must be >= 0. See ScaleJitterLimit for images other than 224 px.
  int64_t max_offset = kJitterLimitEpoch1;
  // Probability of flipping the batch horizontally. Official: 0.5. Must be in [0, 1].
  double flip_probability = 0.5;
};

// One step's random choices.
struct JitterDraw {
  int64_t offset = 0;  // roll in pixels along H and W (positive: towards higher indices)
  bool flip = false;   // flip along W after the roll
};

// Draws one step's jitter: exactly two values from `rng` (offset, then flip).
// REQUIRES (TORCH_CHECK): options valid.
JitterDraw DrawJitter(std::mt19937_64& rng, const JitterOptions& options);

// Applies `draw` to x [B, C, H, W] (any dtype/device): roll by (offset, offset) over (H, W), then
// flip W if draw.flip. Differentiable w.r.t. x; returns a new tensor (x itself when the draw is
// the identity).
// REQUIRES (TORCH_CHECK): x is 4-D.
at::Tensor ApplyJitter(const at::Tensor& x, const JitterDraw& draw);

// DrawJitter then ApplyJitter; the draw is stored in *draw_out when given (for logging).
at::Tensor RandomJitter(const at::Tensor& x, std::mt19937_64& rng, const JitterOptions& options,
                        JitterDraw* draw_out = nullptr);

// The roll limit for `image_size` px from a limit sized for 224 px: round(limit * size / 224)
// (halves away from zero), at least 1 when limit >= 1 (0 stays 0). E.g. 15/30 become 2/4 at
// 28 px and 8/15 at 112 px. For non-square images pass min(H, W).
// REQUIRES (TORCH_CHECK): limit_at_224 >= 0, image_size >= 1.
int64_t ScaleJitterLimit(int64_t limit_at_224, int64_t image_size);

}  // namespace psaq::gen
