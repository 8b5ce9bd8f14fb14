// A single-pass CPU kernel for the per-tensor fake-quantizer: the same IEEE operations in the
// same order as QuantizeToGrid + DequantizeFromGrid (t = x / s; t = t + z; t = round-half-even(t);
// in_range = qmin <= t <= qmax; t = clamp(t, qmin, qmax); x̂ = (t - z) * s), so its results are
// bit-identical to the op-by-op path, with one pass over memory and one allocation instead of
// six. The activation quantizers run it at every tap of every forward, where the op-by-op path
// costs more than the model's own matmuls on small models.
#pragma once

#include <ATen/core/Tensor.h>

#include "quant/uniform_grid.h"

namespace psaq::quant {

// True when FusedFakeQuantize applies: x is a CPU float32/float64 tensor and the grid is per
// tensor (one scale; zero point undefined or one element) of x's dtype on the CPU.
bool CanFuseFakeQuantize(const at::Tensor& x, const UniformGrid& grid);

// Returns x̂ (a new contiguous tensor shaped like x). When `in_range` is non-null it receives the
// bool mask of elements whose unclamped code lay in [qmin, qmax]. Not differentiable (call it
// outside autograd). REQUIRES: CanFuseFakeQuantize(x, grid) (TORCH_CHECK).
at::Tensor FusedFakeQuantize(const at::Tensor& x, const UniformGrid& grid,
                             at::Tensor* in_range = nullptr);

}  // namespace psaq::quant
