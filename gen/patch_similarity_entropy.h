// V1's entropy term on a block's A·V features (docs/psaq_spec.md §1.3-1.4): the patch
// similarities of each image (gen/patch_similarity.h), then the differential entropy of their
// kernel density. This is the one place that chooses between the two implementations
// (KdeOptions::implementation): the reference (gen/kde_entropy.h) and the fused one
// (gen/fused_entropy.h), which builds on the reference's grid and entropy steps. Neither of them
// includes this header, so the dependency runs one way: this -> fused -> reference -> options.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "gen/kde_options.h"

namespace psaq::gen {

// From a block's head-averaged A·V feature F [B', N, d] (B' = B, or B * nW for Swin):
// per-image entropies [B] of its patch similarities (gen/patch_similarity.h), grid from the
// whole batch. Differentiable w.r.t. F. options.implementation == kFused hands the call to
// FusedPatchSimilarityEntropyPerImage (gen/fused_entropy.h); kReference computes S
// (PatchSimilarityPerImage) and KdeEntropyPerImage (gen/kde_entropy.h).
at::Tensor PatchSimilarityEntropyPerImage(const at::Tensor& av_mean, int64_t batch_size,
                                          const KdeOptions& options = {});

// The same averaged over images: the scalar H of one block (the golden fixtures' entropy64[i]).
at::Tensor PatchSimilarityEntropy(const at::Tensor& av_mean, int64_t batch_size,
                                  const KdeOptions& options = {});

// V1's entropy loss over blocks: L_ent = -sum_i PatchSimilarityEntropy(av_means[i]) (scalar).
// REQUIRES (TORCH_CHECK): av_means non-empty.
at::Tensor PatchSimilarityEntropyLoss(const std::vector<at::Tensor>& av_means, int64_t batch_size,
                                      const KdeOptions& options = {});

}  // namespace psaq::gen
