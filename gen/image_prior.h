// Image priors on the synthetic batch: V1's total-variation target term (docs/psaq_spec.md §1.5)
// and DeepInversion's L2 image-norm prior (optional, for the V2 reconstruction).
//
// Total variation, as in the official code (zkkli/PSAQ-ViT generate_data.py,
// get_image_prior_losses, after DeepInversion): for x [B, C, H, W],
//   d_w    = x[:, :, :, :-1]  - x[:, :, :, 1:]     (horizontal neighbours)
//   d_h    = x[:, :, :-1, :]  - x[:, :, 1:, :]     (vertical neighbours)
//   d_anti = x[:, :, 1:, :-1] - x[:, :, :-1, 1:]   (anti-diagonal: (i+1, j) vs (i, j+1))
//   d_diag = x[:, :, :-1, :-1] - x[:, :, 1:, 1:]   (diagonal: (i, j) vs (i+1, j+1))
//   TV(x) = ||d_w||_F + ||d_h||_F + ||d_anti||_F + ||d_diag||_F
// over the whole batch (Frobenius norms, not squared, not averaged). V1 does not minimise TV;
// it matches a target: L_tv = |TV(x) - v| with v ~ U(2500, 3000) drawn once per run, sized (the
// code says) "for batch_size 32" of 3 x 224 x 224 images.
//
// Scaling the target to other shapes: for i.i.d. pixel statistics each ||d||_F grows as the
// square root of its element count, so TV scales with sqrt(numel): v(shape) = v_ref *
// sqrt(numel(shape) / (32 * 3 * 224 * 224)). This is the rule the Fashion-MNIST reference
// measurement used (docs/reference_fmnist.md); it keeps the per-pixel smoothness the official
// target implies. Boundary effects ((H-1)/H) are ignored.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <random>

namespace psaq::gen {

// The official target range and the batch shape it was sized for.
inline constexpr double kTvTargetLow = 2500.0;
inline constexpr double kTvTargetHigh = 3000.0;
inline constexpr int64_t kTvReferenceNumel = int64_t{32} * 3 * 224 * 224;

// TV(x) as above: a differentiable scalar in x's dtype.
// REQUIRES (TORCH_CHECK): x [B, C, H, W] floating point with H, W >= 2.
at::Tensor TotalVariation(const at::Tensor& x);

// L_tv = |TV(x) - target| (scalar; the official torch.norm of a 0-dim tensor).
at::Tensor TotalVariationTargetLoss(const at::Tensor& x, double target);

// The target for a batch of `numel` elements, from a target sized for 32 x 3 x 224 x 224:
// reference_target * sqrt(numel / kTvReferenceNumel).
// REQUIRES (TORCH_CHECK): numel >= 1, reference_target >= 0.
double ScaleTvTarget(double reference_target, int64_t numel);

// Draws v ~ U(kTvTargetLow, kTvTargetHigh) from `rng` and scales it to `numel` elements. Uses
// the top 53 bits of one draw (portable: no std::uniform_real_distribution, whose algorithm is
// library-specific), so a seed gives the same target on every platform.
double SampleTvTarget(std::mt19937_64& rng, int64_t numel);

// DeepInversion's L2 prior: the mean over images of each image's Euclidean norm,
// mean_b ||x_b||_2 (torch.norm(x.view(B, -1), dim=1).mean()). Not part of V1.
// REQUIRES (TORCH_CHECK): x has a batch dimension (dim >= 1) with B >= 1, floating point.
at::Tensor ImageL2Prior(const at::Tensor& x);

}  // namespace psaq::gen
