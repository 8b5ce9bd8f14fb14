// Small pieces shared by the model's building blocks: a module's view of the TapSet (TapScope),
// Linear/Conv application through weight taps, timm-like initialisation, and a per-device/dtype
// cache for the constant tensors that are not part of the state dict.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <torch/nn/modules/linear.h>

#include <memory>
#include <string>

#include "model/tap.h"

namespace psaq::model {

// A module's handle on the model's TapSet: registers taps under the module's dotted path.
// Cheap to copy (a shared_ptr and a string); each module keeps the TapSet pointer and its ids.
class TapScope {
 public:
  TapScope(std::shared_ptr<TapSet> taps, std::string prefix);

  // The scope of a child module: prefix "a.b" + "c" -> "a.b.c" (or "c" at the root).
  TapScope Child(const std::string& name) const;
  // The full name of a point in this scope: "<prefix>.<point>" (or "<point>" at the root).
  std::string Name(const std::string& point) const;
  // Registers "<prefix>.<point>" and returns its id. REQUIRES: not registered yet.
  int Register(const std::string& point, TapKind kind) const;

  const std::string& prefix() const { return prefix_; }
  const std::shared_ptr<TapSet>& taps() const { return taps_; }

 private:
  std::shared_ptr<TapSet> taps_;
  std::string prefix_;
};

// y = x·W'ᵀ + b with W' = taps.Apply(weight_tap, W) (the tap sees the parameter itself).
// x: [..., in]; returns [..., out]. A Linear without bias passes no bias.
at::Tensor TappedLinear(const TapSet& taps, int weight_tap, const torch::nn::Linear& linear,
                        const at::Tensor& x);

// timm's trunc_normal_(tensor, mean=0, std, a=-2, b=2): N(0, std²) truncated to the absolute
// interval [a, b] (inverse-CDF sampling; a clamped plain normal draw when both bounds are at least
// 6 std away, where truncation removes < 1e-8 of the mass). Uses the caller's global torch RNG.
// In place, without recording autograd history. REQUIRES: std > 0, a < 0 < b.
void TruncNormal_(const at::Tensor& tensor, double std, double a = -2.0, double b = 2.0);

// timm's init_weights_vit_timm for a Linear: weight trunc_normal(std .02), bias zeros.
void InitLinearTimm(const torch::nn::Linear& linear);

// A constant tensor built once on the CPU (e.g. Swin's relative-position index or shift mask) and
// copied lazily to the device and dtype a forward pass asks for. Not registered with the module,
// so it never appears in the state dict and is unaffected by Module::to(). Not thread-safe: a
// model instance runs one forward at a time.
class ConstantCache {
 public:
  ConstantCache() = default;
  explicit ConstantCache(at::Tensor cpu_value);

  bool defined() const { return cpu_.defined(); }
  const at::Tensor& cpu() const { return cpu_; }
  // The value on `device` as `dtype` (a floating value may change dtype; an integer index keeps
  // its dtype when `dtype` is its own). Reuses the last copy when device and dtype match.
  const at::Tensor& Get(c10::Device device, c10::ScalarType dtype);

 private:
  at::Tensor cpu_;
  at::Tensor cached_;
};

}  // namespace psaq::model
