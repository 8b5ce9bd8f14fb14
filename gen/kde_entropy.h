// PSAQ-ViT V1's differential entropy of the patch-similarity distribution (docs/psaq_spec.md
// §1.4), the straightforward reference implementation.
//
// For similarities S [B, M] (gen/patch_similarity.h) and options h = bandwidth,
// G = grid_points, floor = density_floor:
//   grid    x_k = linspace(s_min, s_max, G), s_min/s_max = min/max of S over the whole batch and
//           all pairs, read back as host scalars: no gradient flows through the grid.
//   density p_b(x_k) = (1/M) * sum_m c * exp(-(x_k - S[b,m])^2 / (2h^2)),  c = 1/sqrt(2*pi*h^2)
//   entropy H_b = trapezoid over k of f(x_k), f = -(p + floor) * log(p + floor)
//   H = mean over b of H_b.
// The entropy loss of V1 is L_ent = -sum over hooked blocks of H (PatchSimilarityEntropyLoss,
// gen/patch_similarity_entropy.h, which starts from the blocks' A·V features and dispatches
// between this reference and the fused implementation).
//
// Fidelity to the official code (zkkli/PSAQ-ViT generate_data.py and utils/kde.py, which is
// pytorch-generative's GaussianKernel/KernelDensityEstimator):
//   - the grid is torch.linspace (CPU kernel: the first half counted up from s_min, the second
//     half down from s_max) in the compute dtype, then moved to S's device;
//   - c is computed as a tensor in the compute dtype: 1 / sqrt(fl(2*pi*h^2));
//   - the floor is added after the mean over M; the trapezoid's dx is taken in the grid's dtype;
//   - the op order of the kernel (neg, pow, divide by 2h^2, exp, times c, mean) is kept.
// Compute dtype: that of S (float32 or float64; half/bfloat16 computed in float32). In float32
// this is the official code's arithmetic (its linspace and kernel constant are float32 by
// default); in float64 it matches the golden fixtures (float64 grid and constant) to ~1e-15.
//
// Memory: autograd keeps about 2 * B * G * M values per block (the differences and the
// exponentials). `chunk_size` only bounds the forward temporaries; the fused implementation
// (gen/fused_entropy.h, selected with KdeOptions::implementation) keeps none of them.
//
// This file does not know the fused implementation: the fused one builds on the grid and entropy
// steps below, and gen/patch_similarity_entropy.h is where the two meet.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>

#include "gen/kde_options.h"

namespace psaq::gen {

// The dtype the entropy is computed in for similarities/features of dtype `t`: float32 for
// half/bfloat16, else t.
at::ScalarType KdeComputeType(at::ScalarType t);

// The kernel constant 1/sqrt(2*pi*h^2) rounded as the official code computes it: a tensor of the
// compute dtype (float32: rounded through float; float64: exact double arithmetic).
double KdeKernelCoefficient(double bandwidth, at::ScalarType dtype);

// The grid [G] = linspace(s_min, s_max, G) in `dtype`, built on the CPU and moved to `device`
// (KdeGrid once the batch min/max are known).
// REQUIRES (TORCH_CHECK): s_min and s_max finite; options valid.
at::Tensor KdeGridFromRange(double s_min, double s_max, at::ScalarType dtype, c10::Device device,
                            const KdeOptions& options = {});

// The detached evaluation grid [G] for S (any shape): linspace(S.min(), S.max(), G) in the
// compute dtype on S's device. Synchronises with the device (two scalar reads).
// REQUIRES (TORCH_CHECK): S non-empty, floating point; options valid.
at::Tensor KdeGrid(const at::Tensor& similarities, const KdeOptions& options = {});

// Kernel density p [B, G] of each image's similarities S [B, M] at the points grid [G].
// Differentiable w.r.t. S (not w.r.t. the grid, which callers pass detached).
// REQUIRES (TORCH_CHECK): S 2-D with M >= 1, grid 1-D, both floating point on the same device.
at::Tensor KdeDensity(const at::Tensor& similarities, const at::Tensor& grid,
                      const KdeOptions& options = {});

// Per-image differential entropy [B] from a density p [B, G] on grid [G]: trapezoid rule of
// -(p + floor) * log(p + floor).
at::Tensor DifferentialEntropy(const at::Tensor& density, const at::Tensor& grid,
                               double density_floor = 1e-4);

// Per-image entropies [B] of S [B, M] on a given grid [G] (KdeDensity + DifferentialEntropy).
// Use it to share one grid across shards of a batch (min/max all-reduced by the caller).
at::Tensor KdeEntropyOnGrid(const at::Tensor& similarities, const at::Tensor& grid,
                            const KdeOptions& options = {});

// Per-image entropies [B] of S [B, M] on KdeGrid(S).
at::Tensor KdeEntropyPerImage(const at::Tensor& similarities, const KdeOptions& options = {});

}  // namespace psaq::gen
