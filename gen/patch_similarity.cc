#include "gen/patch_similarity.h"

#include <ATen/ATen.h>

namespace psaq::gen {

at::Tensor PatchUnitFeatures(const at::Tensor& features) {
  TORCH_CHECK(features.dim() == 3, "PatchUnitFeatures: expected features [B', N, d], got ",
              features.sizes());
  TORCH_CHECK(at::isFloatingType(features.scalar_type()),
              "PatchUnitFeatures: expected floating-point features, got ", features.scalar_type());
  TORCH_CHECK(features.size(1) >= 2 && features.size(2) >= 1,
              "PatchUnitFeatures: need at least 2 tokens and 1 channel, got ", features.sizes());
  at::Tensor f = features;
  if (f.scalar_type() == at::kHalf || f.scalar_type() == at::kBFloat16) f = f.to(at::kFloat);
  f = f.slice(/*dim=*/1, /*start=*/1);  // [B', N', d]: token 0 dropped (see header)

  // Each norm is clamped on its own, and the clamp does not change the gradient (PyTorch clamps
  // in place under no_grad): value max(n, eps), derivative that of n.
  at::Tensor norm = at::linalg_vector_norm(f, 2, {-1}, /*keepdim=*/true);  // [B', N', 1]
  at::Tensor clamped = norm + (norm.clamp_min(kCosineEps) - norm).detach();
  return f / clamped;  // [B', N', d]
}

at::Tensor PatchCosineSimilarity(const at::Tensor& features) {
  const at::Tensor unit = PatchUnitFeatures(features);  // [B', N', d]
  return at::matmul(unit, unit.transpose(1, 2));        // [B', N', N']
}

at::Tensor PatchSimilarityPerImage(const at::Tensor& features, int64_t batch_size) {
  TORCH_CHECK(batch_size >= 1, "PatchSimilarityPerImage: batch_size must be >= 1, got ",
              batch_size);
  TORCH_CHECK(
      features.dim() == 3 && features.size(0) >= batch_size && features.size(0) % batch_size == 0,
      "PatchSimilarityPerImage: features ", features.sizes(),
      " do not split into batch_size=", batch_size, " images (B' % B != 0)");
  return PatchCosineSimilarity(features).reshape({batch_size, -1});  // [B, M]
}

}  // namespace psaq::gen
