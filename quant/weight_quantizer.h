// Weight fake-quantizers.
//
// MinMaxWeightQuantizer is PSAQ's: symmetric, per group (per output channel), range = the
// group's max(|min|, |max|), recomputed from the current weights at every call, so a student whose
// latent float weights are trained (PSAQ V2, docs/psaq_spec.md §2.4) is requantized each step.
// Gradient: identity (straight-through) w.r.t. the weights; the scale is a constant.
//
// FrozenWeightQuantizer holds integer codes and scales read from an export (quant/export.h) and
// ignores the live weights: it computes clamp(q) * s with the same ops as the live path, so an
// imported model reproduces the exported one bit for bit. (Recomputing the scales from the
// dequantized weights would not: max|q * s| != a_r in general.) Gradient: identity to the
// weight parameter, though the value does not move with it (imported models are for inference).
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>

#include "quant/granularity.h"
#include "quant/quantizer.h"

namespace psaq::quant {

class MinMaxWeightQuantizer : public Quantizer {
 public:
  // Throws c10::Error unless IsValidBits(bits). REQUIRES: granularity non-null.
  MinMaxWeightQuantizer(int bits, std::unique_ptr<Granularity> granularity);

  const Granularity& granularity() const { return *granularity_; }
  bool ready() const override { return true; }
  // x: the weight ([out, in] or [out, in, kh, kw]). Scale shaped granularity().ParamShape.
  UniformGrid Grid(const at::Tensor& x) const override;
  SteGradient ste() const override { return SteGradient::kIdentity; }

 private:
  std::unique_ptr<Granularity> granularity_;
};

class FrozenWeightQuantizer : public Quantizer {
 public:
  // codes: integer tensor (any integer dtype), the weight's shape, values in the symmetric
  // range of `bits`; scale: floating, broadcastable against codes, > 0. TORCH_CHECKs all of it.
  // REQUIRES: 2 <= bits <= 8.
  FrozenWeightQuantizer(int bits, at::Tensor codes, at::Tensor scale);

  bool ready() const override { return true; }
  // The stored grid, moved to x's device (dtype of the stored scale).
  UniformGrid Grid(const at::Tensor& x) const override;
  SteGradient ste() const override { return SteGradient::kIdentity; }
  // clamp(q) * s on x's device. REQUIRES: x.sizes() == codes().sizes() and x's dtype equals the
  // scale's (TORCH_CHECK).
  at::Tensor FakeQuantize(const at::Tensor& x) const override;

  const at::Tensor& codes() const { return codes_; }
  const at::Tensor& scale() const { return scale_; }

 private:
  at::Tensor codes_;  // int8, weight shape
  at::Tensor scale_;  // floating, broadcastable
  // Codes (as floats of the scale's dtype) and scale on the device of the last call, so a model
  // on a GPU does not copy them at every forward.
  mutable at::Tensor device_codes_;
  mutable UniformGrid device_grid_;
};

}  // namespace psaq::quant
