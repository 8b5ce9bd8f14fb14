// The uniform affine integer grid every psaq quantizer maps onto (quant/quantizer.h), and the
// straight-through gradient choice: plain data shared by the Quantizer interface
// (quant/quantizer.h), the grid formulas (quant/uniform.h) and the fused CPU kernel
// (quant/fused_fake_quant.h). Nothing here depends on those, so they depend on each other one way
// only: quantizer -> uniform -> fused_fake_quant -> this.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace psaq::quant {

// Bit widths a grid supports (quantization off is kBitsOff, quant/quantizer.h).
inline constexpr int kMinBits = 2;
inline constexpr int kMaxBits = 8;

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

}  // namespace psaq::quant
