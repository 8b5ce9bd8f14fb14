#include "gen/image_prior.h"

#include <ATen/ATen.h>

#include <cmath>

namespace psaq::gen {

at::Tensor TotalVariation(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && at::isFloatingType(x.scalar_type()),
              "TotalVariation: expected floating-point images [B, C, H, W], got ", x.sizes(), " ",
              x.scalar_type());
  TORCH_CHECK(x.size(2) >= 2 && x.size(3) >= 2, "TotalVariation: need H, W >= 2, got ", x.sizes());
  const int64_t h = x.size(2);
  const int64_t w = x.size(3);
  // rows(a, b) / cols(a, b): x restricted to rows [a, b) / columns [a, b).
  auto rows = [](const at::Tensor& t, int64_t a, int64_t b) { return t.slice(2, a, b); };
  auto cols = [](const at::Tensor& t, int64_t a, int64_t b) { return t.slice(3, a, b); };
  const at::Tensor d_w = cols(x, 0, w - 1) - cols(x, 1, w);
  const at::Tensor d_h = rows(x, 0, h - 1) - rows(x, 1, h);
  const at::Tensor d_anti = cols(rows(x, 1, h), 0, w - 1) - cols(rows(x, 0, h - 1), 1, w);
  const at::Tensor d_diag = cols(rows(x, 0, h - 1), 0, w - 1) - cols(rows(x, 1, h), 1, w);
  // Same summation order as the official code: w, h, anti-diagonal, diagonal.
  return at::linalg_vector_norm(d_w, 2) + at::linalg_vector_norm(d_h, 2) +
         at::linalg_vector_norm(d_anti, 2) + at::linalg_vector_norm(d_diag, 2);
}

at::Tensor TotalVariationTargetLoss(const at::Tensor& x, double target) {
  TORCH_CHECK(std::isfinite(target), "TotalVariationTargetLoss: target must be finite, got ",
              target);
  return (TotalVariation(x) - target).abs();
}

double ScaleTvTarget(double reference_target, int64_t numel) {
  TORCH_CHECK(numel >= 1, "ScaleTvTarget: numel must be >= 1, got ", numel);
  TORCH_CHECK(reference_target >= 0, "ScaleTvTarget: reference_target must be >= 0, got ",
              reference_target);
  return reference_target *
         std::sqrt(static_cast<double>(numel) / static_cast<double>(kTvReferenceNumel));
}

double SampleTvTarget(std::mt19937_64& rng, int64_t numel) {
  const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;  // [0, 1)
  return ScaleTvTarget(kTvTargetLow + (kTvTargetHigh - kTvTargetLow) * u, numel);
}

at::Tensor ImageL2Prior(const at::Tensor& x) {
  TORCH_CHECK(x.dim() >= 1 && x.size(0) >= 1 && at::isFloatingType(x.scalar_type()),
              "ImageL2Prior: expected a floating-point batch [B, ...], got ", x.sizes(), " ",
              x.scalar_type());
  return at::linalg_vector_norm(x.reshape({x.size(0), -1}), 2, {1}).mean();
}

}  // namespace psaq::gen
