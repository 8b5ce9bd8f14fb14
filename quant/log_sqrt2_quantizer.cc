#include "quant/log_sqrt2_quantizer.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>

#include <cmath>

#include "quant/uniform.h"

namespace psaq::quant {
namespace {

// x̂ of integer-valued codes `code` (floating, any shape), every op in code's dtype; the zero
// code is handled by the caller.
at::Tensor LevelOf(const at::Tensor& code, double delta) {
  const at::Tensor odd = at::fmod(code, 2);  // 0 or 1
  const at::Tensor sqrt2_factor = odd * (std::sqrt(2.0) - 1.0) + 1.0;
  return at::pow(2.0, -at::ceil(code / 2)) * sqrt2_factor * delta;
}

}  // namespace

double LogSqrt2Quantizer::delta() const {
  const double d = range().second;
  TORCH_CHECK(d > 0, "log-sqrt(2) quantizer: the range's max must be > 0, got ", d);
  return d;
}

at::Tensor LogSqrt2Quantizer::Codes(const at::Tensor& x) const {
  TORCH_CHECK(enabled(), "Codes() of a quantizer that is off (32 bits)");
  TORCH_CHECK(x.is_floating_point(), "log-sqrt(2) quantizer: floating tensor expected");
  at::NoGradGuard no_grad;
  TORCH_CHECK(!(x.detach() < 0).any().item<bool>() && !x.detach().isnan().any().item<bool>(),
              "log-sqrt(2) quantizer: values must be >= 0 (attention probabilities)");
  return CodesOf(x.detach());
}

at::Tensor LogSqrt2Quantizer::CodesOf(const at::Tensor& x) const {
  const double zero_code = static_cast<double>((int64_t{1} << bits()) - 1);
  const at::Tensor k = at::round(-2.0 * at::log2(x / delta()));
  // k >= zero_code includes x = 0 (k = +inf); the clamp takes x > Δ to code 0.
  return at::where(k >= zero_code, at::full_like(k, zero_code), k.clamp_min(0)).to(at::kLong);
}

at::Tensor LogSqrt2Quantizer::LevelTable(at::ScalarType dtype) const {
  const int64_t n = int64_t{1} << bits();
  at::Tensor table = LevelOf(at::arange(n, at::TensorOptions().dtype(dtype)), delta());
  table[n - 1] = 0;
  return table;
}

at::Tensor LogSqrt2Quantizer::Decode(const at::Tensor& codes, at::ScalarType dtype) const {
  TORCH_CHECK(!codes.is_floating_point(), "log-sqrt(2) decode: integer codes expected");
  const at::Tensor table = LevelTable(dtype).to(codes.device());
  return table.index_select(0, codes.reshape({-1})).reshape(codes.sizes());
}

at::Tensor LogSqrt2Quantizer::FakeQuantize(const at::Tensor& x) const {
  if (!enabled()) return x;
  TORCH_CHECK(ready(), "FakeQuantize: the quantizer has no range yet (calibrate first)");
  at::Tensor value;
  {
    at::NoGradGuard no_grad;
    value = Decode(CodesOf(x.detach()), x.scalar_type());
  }
  return at::GradMode::is_enabled() && x.requires_grad() ? StraightThrough(x, value) : value;
}

}  // namespace psaq::quant
