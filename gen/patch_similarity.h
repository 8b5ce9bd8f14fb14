// PSAQ-ViT's patch-similarity matrix (docs/psaq_spec.md §1.3).
//
// Input: one block's attention output A·V averaged over heads, the model's "<block>.av_mean"
// feature tap: F [B', N, d], where B' = B for ViT/DeiT and B' = B * nW for Swin (windows
// image-major, as timm's window_partition lays them out).
//
// Steps, replicating the official code (zkkli/PSAQ-ViT generate_data.py):
//   1. Drop token 0 of every row: F' = F[:, 1:, :] ([B', N', d], N' = N - 1). For ViT this is the
//      class token; for Swin it is the first token of every window, a quirk of the official code
//      that is kept for fidelity.
//   2. Cosine similarity of every token pair, with PyTorch's (>= 1.12) torch.cosine_similarity
//      semantics: each row is divided by max(||row||_2, eps) with eps = 1e-8 (the two norms are
//      clamped separately, not their product), then dot products are taken. The clamp is
//      transparent to autograd (as in PyTorch, where it is applied in place under no_grad), so
//      the gradient is that of x / ||x||. S [B', N', N'], diagonal included.
//   3. Group per image: S viewed as [B, M], M = (B'/B) * N'^2; image b owns rows
//      b*(B'/B) .. (b+1)*(B'/B)-1 of B', i.e. all its windows.
//
// Differentiable w.r.t. F. Runs on F's device, in F's dtype (float32 or float64; half/bfloat16
// are computed in float32). The dot products are one batched matmul, so the result equals
// PyTorch's broadcast-multiply-sum up to summation order (~1 ulp).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace psaq::gen {

// PyTorch's default eps for cosine_similarity.
inline constexpr double kCosineEps = 1e-8;

// F [B', N, d] -> U [B', N-1, d]: tokens 1..N-1 of each row divided by max(||row||_2, eps), with
// the gradient of x / ||x|| (steps 1 and 2 above; S = U U^T). Shared with the fused entropy
// (gen/fused_entropy.h), so both start from the same unit rows.
// REQUIRES (TORCH_CHECK): F is 3-D, floating point, N >= 2, d >= 1.
at::Tensor PatchUnitFeatures(const at::Tensor& features);

// F [B', N, d] -> S [B', N-1, N-1]: cosine similarities of tokens 1..N-1 of each row.
// REQUIRES (TORCH_CHECK): F is 3-D, floating point, N >= 2, d >= 1.
at::Tensor PatchCosineSimilarity(const at::Tensor& features);

// F [B', N, d] and the image count B -> [B, M], M = (B'/B) * (N-1)^2: each image's similarities
// over all of its windows, in the order of S.view(B, -1).
// REQUIRES (TORCH_CHECK): as above, batch_size >= 1 and B' divisible by batch_size.
at::Tensor PatchSimilarityPerImage(const at::Tensor& features, int64_t batch_size);

}  // namespace psaq::gen
