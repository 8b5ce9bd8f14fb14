// RepQ-ViT's log-sqrt(2) quantizer for the post-softmax attention (Li et al., ICCV 2023, §3.3;
// zkkli/RepQ-ViT LogSqrt2Quantizer), used at every "<attn>.softmax" tap under
// QuantizerKind::kRepq (quant/quant_config.h).
//
// Attention probabilities follow a power law: most are tiny, a few near 1. A log2 grid spends
// its levels on small values; base sqrt(2) halves the step between levels. With n = 2^b codes
// and a scale Δ > 0 (the calibrated range's max), for x >= 0:
//   k    = round(-2 log2(x / Δ))              round half to even, in x's dtype
//   code = clamp(k, 0, n - 1), and code n - 1 wherever k >= n - 1   (x = 0 gives k = +inf)
//   x̂   = Δ · 2^(-ceil(code / 2)) · (code odd ? sqrt(2) : 1)   (= Δ · 2^(-code / 2))
//         for code < n - 1, and x̂ = 0 for code n - 1.
// So the b-bit code holds n - 1 levels Δ·2^0, Δ·2^-0.5, ..., Δ·2^(-(n-2)/2) and an exact zero.
// Difference from RepQ's code: RepQ zeroes k >= n and keeps code n - 1 as the level
// Δ·2^(-(n-1)/2), n + 1 values that do not fit b bits; here the smallest level is the zero.
// Δ is the calibrated range's max: RepQ's best of three percentiles by squared error under
// ObserverKind::kPercentile (quant/percentile_observer.h, scored with this quantizer), the max
// under kMinMax.
// Gradient: straight-through identity (RepQ's function has none; V2's student steps need one).
//
// It is an ActivationQuantizer (range, calibration, export as before) whose range is [0, Δ]:
// its uniform Grid() describes that range for reports and export; FakeQuantize does not use it.
#pragma once

#include <ATen/core/Tensor.h>

#include "quant/activation_quantizer.h"

namespace psaq::quant {

class LogSqrt2Quantizer : public ActivationQuantizer {
 public:
  explicit LogSqrt2Quantizer(int bits) : ActivationQuantizer(bits) {}

  // Δ = range().second. REQUIRES: has_range() with max > 0 (TORCH_CHECK).
  double delta() const;

  // The integer codes of x (int64, x's shape and device). REQUIRES: enabled(), has_range(),
  // x floating with no negative or NaN element (TORCH_CHECK).
  at::Tensor Codes(const at::Tensor& x) const;
  // x̂ for integer codes in [0, 2^b - 1], as `dtype` on the codes' device: a lookup in the table
  // of the 2^b values (LevelTable), the way an integer kernel would decode them.
  at::Tensor Decode(const at::Tensor& codes, at::ScalarType dtype) const;
  // The 2^b values x̂ of codes 0 .. 2^b - 1, computed in `dtype` on the CPU.
  at::Tensor LevelTable(at::ScalarType dtype) const;

  // x̂ = Decode(Codes(x)) (without Codes' input check: softmax outputs are never negative), or
  // x when !enabled(); identity gradient.
  at::Tensor FakeQuantize(const at::Tensor& x) const override;

 private:
  at::Tensor CodesOf(const at::Tensor& x) const;  // x detached
};

}  // namespace psaq::quant
