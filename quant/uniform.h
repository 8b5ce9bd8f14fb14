// PSAQ-ViT's quantization formulas (docs/psaq_spec.md §3.2-3.3), replicated op by op from the
// official code (zkkli/PSAQ-ViT, models/quantization_utils/quant_utils.py, quant_modules.py).
//
// Weights, symmetric (SymmetricGrid), per group r (per output channel in PSAQ):
//   a_r = max(-min W_r, max W_r)                      (= max(|min W_r|, |max W_r|))
//   s_r = max(a_r / ((2^b - 1) / 2), eps)             a_r/127.5 at 8 bits, a_r/7.5 at 4 bits
//   q   = clamp(round(W / s), -2^(b-1), 2^(b-1) - 1)  so +127.5 -> 128 -> 127, -127.5 -> -128
//   Ŵ   = q * s
//   PSAQ adds and subtracts an int64 zero point of 0; we skip both ops (they change at most the
//   sign of a zero).
// Activations, asymmetric per tensor (AsymmetricGrid), from a range [m, M]:
//   s = max((M - m) / (2^b - 1), eps)
//   z = clamp(0 - round(m / s), 0, 2^b - 1)           z is rounded before use, then clamped
//   q = clamp(round(x / s + z), 0, 2^b - 1)           two float ops: t = x / s, then t + z
//   x̂ = (q - z) * s
// eps = torch.finfo(float32).eps = 2^-23 in every dtype. round is half to even (at::round).
// All grid parameters are tensors of x's dtype on x's device, so every division is a true
// IEEE division on CPU and CUDA. (PSAQ divides the weight range by a Python float; on CUDA
// PyTorch evaluates tensor / CPU-scalar as a multiplication by the reciprocal, which can move
// s_r by one ulp. We use the exact quotient everywhere.)
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <limits>

#include "quant/uniform_grid.h"

namespace psaq::quant {

// PSAQ's lower bound on every scale.
inline constexpr float kScaleEps = std::numeric_limits<float>::epsilon();

// Integer code range for `bits` (2..8): symmetric [-2^(b-1), 2^(b-1) - 1], asymmetric [0, 2^b - 1].
int64_t SymmetricQMin(int bits);
int64_t SymmetricQMax(int bits);
int64_t AsymmetricQMax(int bits);

// absmax: per-group max(-min, max), any shape (it becomes the scale's shape), floating.
// Returns the symmetric grid (zero_point undefined). REQUIRES: 2 <= bits <= 8.
UniformGrid SymmetricGrid(const at::Tensor& absmax, int bits);

// min, max: 0-dim tensors of the compute dtype and device (the observed range; min <= max).
// Returns the asymmetric grid. REQUIRES: 2 <= bits <= 8.
UniformGrid AsymmetricGrid(const at::Tensor& min, const at::Tensor& max, int bits);

// Integer codes clamp(round(x / s + z), qmin, qmax), as values of x's dtype. When `in_range` is
// non-null it receives the bool mask of elements whose unclamped code lay in [qmin, qmax].
at::Tensor QuantizeToGrid(const at::Tensor& x, const UniformGrid& grid,
                          at::Tensor* in_range = nullptr);

// (q - z) * s; q holds integer codes (any dtype), the result has the scale's dtype.
at::Tensor DequantizeFromGrid(const at::Tensor& q, const UniformGrid& grid);

// DequantizeFromGrid(QuantizeToGrid(x)), outside autograd.
at::Tensor FakeQuantizeNoGrad(const at::Tensor& x, const UniformGrid& grid);

// The same value as FakeQuantizeNoGrad, differentiable w.r.t. x with the straight-through
// gradient `ste` (a custom autograd function; the grid is a constant). Falls back to the no-grad
// path when grad mode is off or x does not require grad.
at::Tensor FakeQuantizeSte(const at::Tensor& x, const UniformGrid& grid, SteGradient ste);

// Returns `value` (a tensor computed outside autograd, same shape as x) as a function of x whose
// gradient is the identity: for quantizers whose output is precomputed (frozen weights).
at::Tensor StraightThrough(const at::Tensor& x, const at::Tensor& value);

}  // namespace psaq::quant
