// PSAQ-ViT V1's patch-similarity entropy (docs/psaq_spec.md §1.3-1.4), fused: the same values
// and gradients as the reference (gen/patch_similarity_entropy.h PatchSimilarityEntropyPerImage
// with KdeImplementation::kReference) without materialising the similarities S [B', N', N'] or
// the (B, G, M) kernel tensor, and without autograd keeping anything of size M. It reuses the
// reference's grid and entropy steps (gen/kde_entropy.h) and is selected by
// gen/patch_similarity_entropy.h, which it does not include.
//
// Algorithm, for the head-averaged feature F [B', N, d] of one block and B images:
//   1. U = PatchUnitFeatures(F) [B', N', d] (gen/patch_similarity.h: token 0 dropped, rows
//      divided by max(||row||, 1e-8)), ordinary autograd ops shared with the reference.
//   2. Range pass: s_min / s_max of s_ij = u_i . u_j over all windows and pairs, computed on the
//      fly; the grid x [G] = KdeGridFromRange(s_min, s_max) (detached, as in the reference).
//   3. Density pass (FusedKdeDensity, a custom autograd function): per image b and grid point k,
//      p[b, k] = c / M * sum over the image's pairs of exp(-(x_k - s_ij)^2 / (2 h^2)), walking the
//      upper triangle of every window (off-diagonal pairs weighted 2). Saved for backward: U and
//      the grid only.
//   4. H = DifferentialEntropy(p, x) [B] (the reference's +floor, -p log p, trapezoid; autograd).
// Backward of step 3 recomputes every s_ij: dL/ds_ij = sum_k dL/dp[b,k] * c / M * e_k(s_ij) *
// (x_k - s_ij) / h^2 and dL/du_i = 2 * sum_j dL/ds_ij * u_j (s_ij and s_ji both hold u_i).
//
// Devices: CPU tensors run gen/fused_entropy_cpu.h (at::parallel_for); CUDA tensors run the kernels
// of gen/fused_entropy_kernel.h when psaq is built with CUDA LibTorch (PSAQ_WITH_CUDA); other
// devices are rejected. Dtypes: float32 and float64, half/bfloat16 computed in float32, like
// the reference. Memory beyond the inputs: CPU O(threads * N' * d) plus O(tasks * G) partial
// sums; CUDA a workspace of PlanFusedKde(...).workspace_bytes.
// Numerics: S sums its d products in order (the reference uses a matmul), kernel sums accumulate
// in double; results agree with the reference to rounding (tests/gen/fused_entropy_test.cc:
// 1e-9 float64, 1e-5 float32, values and input gradients).
// Not twice differentiable: a backward with create_graph = true throws.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>

#include "gen/kde_options.h"

namespace psaq::gen {

// Per-image entropies [B] of the patch similarities of F [B', N, d]: the contract of
// PatchSimilarityEntropyPerImage (gen/patch_similarity_entropy.h), computed fused.
// options.implementation is ignored (this is the fused one); options.chunk_size sets the CPU task
// size (see KdeOptions).
// REQUIRES (TORCH_CHECK): F 3-D floating point with N >= 2 and d >= 1 on the CPU or (CUDA builds)
// a CUDA device; batch_size >= 1 dividing B'; options valid; finite similarities; on CUDA
// options.grid_points <= kFusedKdeMaxGridPoints (16).
at::Tensor FusedPatchSimilarityEntropyPerImage(const at::Tensor& av_mean, int64_t batch_size,
                                               const KdeOptions& options = {});

// (s_min, s_max) of s_ij = u_i . u_j over all windows and ordered pairs of unit rows U
// [B', N', d] (float32/float64), without forming S. Not differentiable. Synchronises with the
// device. NaN when a similarity is NaN.
std::pair<double, double> FusedSimilarityRange(const at::Tensor& unit,
                                               const KdeOptions& options = {});

// Kernel density p [B, G] of each image's similarities s_ij = u_i . u_j at grid [G]: the value
// of KdeDensity(U U^T viewed [B, M], grid), differentiable w.r.t. U (once), not w.r.t. the grid.
// REQUIRES (TORCH_CHECK): U [B', N', d] float32/float64 with N', d >= 1; grid [G], G >= 2, of
// U's dtype and device; batch_size divides B'.
at::Tensor FusedKdeDensity(const at::Tensor& unit, const at::Tensor& grid, int64_t batch_size,
                           const KdeOptions& options = {});

}  // namespace psaq::gen
