// The fake-quantizer interface: maps a float tensor onto a uniform integer grid and back.
//
// Every quantizer in psaq is uniform affine: for a grid (scale s, zero point z, [qmin, qmax])
//   q  = clamp(round(x / s + z), qmin, qmax)      round = half to even
//   x̂ = (q - z) * s
// with s and z broadcastable against x (per tensor: 0-dim; per output channel: [C, 1, ...]).
// Symmetric grids have no zero point (z undefined) and skip the two ops that use it. The grid
// (UniformGrid) is quant/uniform_grid.h; its formulas are quant/uniform.h.
//
// Extension by adding one file: a new weight range method (MSE, percentile of |W|) is a new
// Quantizer subclass; a new grouping (per-tensor weights) is a new Granularity
// (quant/granularity.h); a new activation range method is a new RangeObserver
// (quant/range_observer.h). Each then gets one line in its factory.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>

#include "quant/uniform_grid.h"

namespace psaq::quant {

inline constexpr int kBitsOff = 32;  // quantization off: FakeQuantize is the identity

// True for kMinBits..kMaxBits (quant/uniform_grid.h) and kBitsOff.
bool IsValidBits(int bits);

// A bit width written as text the way psaq writes one (std::to_string: one or two decimal
// digits, no sign or space) that IsValidBits accepts; nullopt for anything else. The one reader
// of bit widths from text: flags (--bits_overrides) and export metadata.
std::optional<int> BitsFromText(const std::string& text);

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
