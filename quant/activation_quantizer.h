// PSAQ's activation fake-quantizer (QuantAct): asymmetric, per tensor, with a range [min, max]
// set after calibration from a RangeObserver (quant/range_observer.h). The grid follows
// quant/uniform.h (AsymmetricGrid) and is computed once per (dtype, device) on the CPU, in x's
// dtype, then copied to x's device: the same bits on every device.
//
// Gradient (for PSAQ V2's sample and student steps, docs/psaq_spec.md §2.4): straight-through
// inside the representable range, zero where the code was clamped (SteGradient::kInsideRange;
// the same rule as torch.fake_quantize_per_tensor_affine). PSAQ's own function has no backward.
#pragma once

#include <ATen/core/Tensor.h>

#include <utility>

#include "quant/quantizer.h"

namespace psaq::quant {

class ActivationQuantizer : public Quantizer {
 public:
  // Throws c10::Error unless IsValidBits(bits). Starts without a range.
  explicit ActivationQuantizer(int bits);

  // Sets the calibrated range. REQUIRES: finite, min <= max (TORCH_CHECK).
  void SetRange(double min, double max);
  void ClearRange();
  bool has_range() const { return has_range_; }
  // REQUIRES: has_range() (TORCH_CHECK).
  std::pair<double, double> range() const;

  bool ready() const override { return has_range_; }
  // 0-dim scale and zero point of x's dtype on x's device. REQUIRES: enabled(), has_range().
  UniformGrid Grid(const at::Tensor& x) const override;
  // The same grid for a dtype on the CPU (for reports and export).
  UniformGrid Grid(at::ScalarType dtype) const;
  SteGradient ste() const override { return SteGradient::kInsideRange; }

 private:
  bool has_range_ = false;
  double min_ = 0;
  double max_ = 0;
  // The last grid handed out, keyed by dtype and device (a model runs in one of each).
  mutable UniformGrid cache_;
  mutable at::ScalarType cache_dtype_ = at::kFloat;
  mutable at::Device cache_device_ = at::kCPU;
};

}  // namespace psaq::quant
