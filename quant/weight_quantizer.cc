#include "quant/weight_quantizer.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>

#include <utility>

#include "quant/uniform.h"

namespace psaq::quant {

MinMaxWeightQuantizer::MinMaxWeightQuantizer(int bits, std::unique_ptr<Granularity> granularity)
    : Quantizer(bits), granularity_(std::move(granularity)) {
  TORCH_CHECK(granularity_ != nullptr, "MinMaxWeightQuantizer: null granularity");
}

UniformGrid MinMaxWeightQuantizer::Grid(const at::Tensor& x) const {
  TORCH_CHECK(enabled(), "Grid() of a quantizer that is off (32 bits)");
  TORCH_CHECK(x.is_floating_point(), "weight quantizer: floating weights expected, got ",
              x.scalar_type());
  at::NoGradGuard no_grad;
  auto [min, max] = granularity_->MinMax(x.detach());
  // PSAQ: max(-min, max), i.e. the larger magnitude of the two extremes.
  return SymmetricGrid(at::maximum(at::neg(min), max), bits());
}

FrozenWeightQuantizer::FrozenWeightQuantizer(int bits, at::Tensor codes, at::Tensor scale)
    : Quantizer(bits), codes_(std::move(codes)), scale_(std::move(scale)) {
  TORCH_CHECK(enabled(), "FrozenWeightQuantizer needs 2..8 bits, got ", bits);
  TORCH_CHECK(
      !codes_.is_floating_point() && !codes_.is_complex() && codes_.scalar_type() != at::kBool,
      "frozen weight codes must be integers, got ", codes_.scalar_type());
  TORCH_CHECK(scale_.is_floating_point(), "frozen weight scale must be floating, got ",
              scale_.scalar_type());
  TORCH_CHECK(scale_.dim() == codes_.dim(), "frozen weight scale ", scale_.sizes(),
              " does not broadcast against codes ", codes_.sizes());
  for (int64_t d = 0; d < scale_.dim(); ++d) {
    TORCH_CHECK(scale_.size(d) == 1 || scale_.size(d) == codes_.size(d), "frozen weight scale ",
                scale_.sizes(), " does not broadcast against codes ", codes_.sizes());
  }
  if (codes_.numel() > 0) {
    const int64_t lo = codes_.min().item<int64_t>();
    const int64_t hi = codes_.max().item<int64_t>();
    TORCH_CHECK(lo >= SymmetricQMin(bits) && hi <= SymmetricQMax(bits), "frozen weight codes in [",
                lo, ", ", hi, "] do not fit ", bits, " bits [", SymmetricQMin(bits), ", ",
                SymmetricQMax(bits), "]");
  }
  TORCH_CHECK(at::isfinite(scale_).all().item<bool>() && (scale_ > 0).all().item<bool>(),
              "frozen weight scales must be finite and positive");
  // Range-checked above, so int8 holds any code of at most 8 bits.
  codes_ = codes_.to(at::kChar);
}

UniformGrid FrozenWeightQuantizer::Grid(const at::Tensor& x) const {
  UniformGrid grid;
  grid.scale = scale_.to(x.device());
  grid.qmin = SymmetricQMin(bits());
  grid.qmax = SymmetricQMax(bits());
  return grid;
}

at::Tensor FrozenWeightQuantizer::FakeQuantize(const at::Tensor& x) const {
  TORCH_CHECK(x.sizes() == codes_.sizes(), "frozen weight: the model's tensor ", x.sizes(),
              " does not match the stored codes ", codes_.sizes());
  TORCH_CHECK(x.scalar_type() == scale_.scalar_type(), "frozen weight: the model runs in ",
              x.scalar_type(), " but the stored scales are ", scale_.scalar_type());
  at::Tensor value;
  {
    at::NoGradGuard no_grad;
    // Converted to x's device and dtype once, not at every forward.
    if (!device_codes_.defined() || device_codes_.device() != x.device()) {
      device_codes_ = codes_.to(x.device()).to(x.scalar_type());
      device_grid_ = Grid(x);
    }
    // The live path computes q * s with q the float codes; this is the same op on the same
    // values. A fresh tensor each call: StraightThrough attaches autograd history to it.
    value = DequantizeFromGrid(device_codes_, device_grid_);
  }
  return StraightThrough(x, value);
}

}  // namespace psaq::quant
