#include "quant/activation_quantizer.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>

#include <cmath>

#include "quant/uniform.h"

namespace psaq::quant {

ActivationQuantizer::ActivationQuantizer(int bits) : Quantizer(bits) {}

void ActivationQuantizer::SetRange(double min, double max) {
  TORCH_CHECK(std::isfinite(min) && std::isfinite(max) && min <= max,
              "activation range must be finite with min <= max, got [", min, ", ", max, "]");
  has_range_ = true;
  min_ = min;
  max_ = max;
  cache_ = UniformGrid();
}

void ActivationQuantizer::ClearRange() {
  has_range_ = false;
  cache_ = UniformGrid();
}

std::pair<double, double> ActivationQuantizer::range() const {
  TORCH_CHECK(has_range_, "activation quantizer: no range (calibrate first)");
  return {min_, max_};
}

UniformGrid ActivationQuantizer::Grid(at::ScalarType dtype) const {
  TORCH_CHECK(enabled(), "Grid() of a quantizer that is off (32 bits)");
  TORCH_CHECK(has_range_, "activation quantizer: no range (calibrate first)");
  TORCH_CHECK(at::isFloatingType(dtype), "activation grid: floating dtype expected, got ", dtype);
  at::NoGradGuard no_grad;
  const auto options = at::TensorOptions().dtype(dtype);
  return AsymmetricGrid(at::scalar_tensor(min_, options), at::scalar_tensor(max_, options), bits());
}

UniformGrid ActivationQuantizer::Grid(const at::Tensor& x) const {
  if (cache_.scale.defined() && cache_dtype_ == x.scalar_type() && cache_device_ == x.device()) {
    return cache_;
  }
  UniformGrid grid = Grid(x.scalar_type());
  grid.scale = grid.scale.to(x.device());
  grid.zero_point = grid.zero_point.to(x.device());
  cache_ = grid;
  cache_dtype_ = x.scalar_type();
  cache_device_ = x.device();
  return grid;
}

}  // namespace psaq::quant
