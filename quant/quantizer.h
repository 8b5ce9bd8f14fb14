// The fake-quantizer interface: maps a float tensor onto a uniform integer grid and back.
//
// Every quantizer in psaq is uniform affine: for a grid (scale s, zero point z, [qmin, qmax])
//   q  = clamp(round(x / s + z), qmin, qmax)      round = half to even
//   x̂ = (q - z) * s
// with s and z broadcastable against x (per tensor: 0-dim; per output channel: [C, 1, ...]).
// Symmetric grids have no zero point (z undefined) and skip the two ops that use it.
//
// Extension by adding one file: a new weight range method (MSE, percentile of |W|) is a new
// Quantizer subclass; a new grouping (per-tensor weights) is a new Granularity
// (quant/granularity.h); a new activation range method is a new RangeObserver
// (quant/range_observer.h). Each then gets one line in its factory.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace psaq::quant {

inline constexpr int kMinBits = 2;
inline constexpr int kMaxBits = 8;
inline constexpr int kBitsOff = 32;  // quantization off: FakeQuantize is the identity

// True for kMinBits..kMaxBits and kBitsOff.
bool IsValidBits(int bits);

struct UniformGrid {
  at::Tensor scale;       // > 0, dtype and device of x, broadcastable against x
  at::Tensor zero_point;  // integral values, same shape as scale; undefined when symmetric
  int64_t qmin = 0;       // smallest integer code
  int64_t qmax = 0;       // largest integer code
};

// Which gradient FakeQuantize passes back (the forward value never depends on this).
enum class SteGradient {
  kIdentity,     // dL/dx = dL/dx̂ everywhere (weights)
  kInsideRange,  // dL/dx̂ where round(x / s + z) lies in [qmin, qmax], 0 where it was clamped
};

class Quantizer {
 public:
  // Throws c10::Error (TORCH_CHECK) unless IsValidBits(bits).
  explicit Quantizer(int bits);
  virtual ~Quantizer() = default;
  Quantizer(const Quantizer&) = delete;
  Quantizer& operator=(const Quantizer&) = delete;

  int bits() const { return bits_; }
  bool enabled() const { return bits_ != kBitsOff; }

  // True when Grid() can be called (an activation quantizer needs a calibrated range first).
  virtual bool ready() const = 0;

  // The grid used to quantize x, in x's dtype and on x's device. REQUIRES: enabled() && ready().
  virtual UniformGrid Grid(const at::Tensor& x) const = 0;

  // The gradient FakeQuantize passes back.
  virtual SteGradient ste() const = 0;

  // x̂ (same shape, dtype and device as x), or x itself when !enabled(). With grad mode on and
  // x requiring grad, differentiable with the straight-through gradient ste(); the value is
  // bit-identical to the no-grad path. The grid itself is treated as a constant.
  // REQUIRES: ready() when enabled() (TORCH_CHECK).
  virtual at::Tensor FakeQuantize(const at::Tensor& x) const;

 private:
  int bits_;
};

}  // namespace psaq::quant
