#include "quant/uniform.h"

#include "quant/fused_fake_quant.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>

namespace psaq::quant {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

void CheckGridBits(int bits) {
  TORCH_CHECK(bits >= kMinBits && bits <= kMaxBits, "a quantization grid needs ", kMinBits, "..",
              kMaxBits, " bits, got ", bits);
}

// The fake-quantizer as one autograd node: the forward runs the exact no-grad kernel (autograd is
// off inside), the backward applies the straight-through rule. The grid is a non-tensor argument,
// so it is a constant for autograd.
struct FakeQuantFunction : torch::autograd::Function<FakeQuantFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const UniformGrid& grid,
                            SteGradient ste) {
    at::Tensor in_range;
    at::Tensor* mask = ste == SteGradient::kInsideRange ? &in_range : nullptr;
    at::Tensor out = CanFuseFakeQuantize(x, grid)
                         ? FusedFakeQuantize(x, grid, mask)
                         : DequantizeFromGrid(QuantizeToGrid(x, grid, mask), grid);
    if (in_range.defined()) ctx->save_for_backward({in_range});
    return out;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    variable_list saved = ctx->get_saved_variables();
    at::Tensor grad = grad_out[0];
    if (!saved.empty()) grad = grad * saved[0];
    return {grad, at::Tensor(), at::Tensor()};
  }
};

// A precomputed value wrapped so that autograd does not count it as an input.
struct Precomputed {
  at::Tensor value;
};

struct IdentityGradFunction : torch::autograd::Function<IdentityGradFunction> {
  static at::Tensor forward(AutogradContext* /*ctx*/, const at::Tensor& /*x*/,
                            const Precomputed& p) {
    return p.value;
  }
  static variable_list backward(AutogradContext* /*ctx*/, variable_list grad_out) {
    return {grad_out[0], at::Tensor()};
  }
};

}  // namespace

int64_t SymmetricQMin(int bits) { return -(int64_t{1} << (bits - 1)); }
int64_t SymmetricQMax(int bits) { return (int64_t{1} << (bits - 1)) - 1; }
int64_t AsymmetricQMax(int bits) { return (int64_t{1} << bits) - 1; }

UniformGrid SymmetricGrid(const at::Tensor& absmax, int bits) {
  CheckGridBits(bits);
  TORCH_CHECK(absmax.is_floating_point(), "SymmetricGrid: absmax must be floating, got ",
              absmax.scalar_type());
  UniformGrid grid;
  grid.qmin = SymmetricQMin(bits);
  grid.qmax = SymmetricQMax(bits);
  // (qmax - qmin) / 2 = (2^b - 1) / 2 is exact in every floating dtype.
  const double half_levels = static_cast<double>(grid.qmax - grid.qmin) / 2.0;
  // A tensor divisor rather than a double: an IEEE division on every device (see quant/uniform.h).
  grid.scale = at::div(absmax, at::scalar_tensor(half_levels, absmax.options()));
  grid.scale.clamp_min_(kScaleEps);
  return grid;
}

UniformGrid AsymmetricGrid(const at::Tensor& min, const at::Tensor& max, int bits) {
  CheckGridBits(bits);
  TORCH_CHECK(min.is_floating_point() && max.is_floating_point(),
              "AsymmetricGrid: min and max must be floating");
  UniformGrid grid;
  grid.qmin = 0;
  grid.qmax = AsymmetricQMax(bits);
  const double levels = static_cast<double>(grid.qmax - grid.qmin);
  grid.scale = at::div(at::sub(max, min), at::scalar_tensor(levels, min.options()));
  grid.scale.clamp_min_(kScaleEps);
  // PSAQ: zero_point = qmin - round(min / scale), then clamped to [qmin, qmax].
  grid.zero_point = at::rsub(at::round(at::div(min, grid.scale)), grid.qmin);
  grid.zero_point.clamp_(grid.qmin, grid.qmax);
  return grid;
}

at::Tensor QuantizeToGrid(const at::Tensor& x, const UniformGrid& grid, at::Tensor* in_range) {
  at::Tensor t = at::div(x, grid.scale);
  if (grid.zero_point.defined()) t = at::add(t, grid.zero_point);
  t = at::round(t);
  // Decided on the rounded code before the clamp: kInsideRange's mask.
  if (in_range != nullptr) *in_range = at::logical_and(t >= grid.qmin, t <= grid.qmax);
  return t.clamp_(grid.qmin, grid.qmax);
}

at::Tensor DequantizeFromGrid(const at::Tensor& q, const UniformGrid& grid) {
  at::Tensor codes = q.is_floating_point() ? q : q.to(grid.scale.scalar_type());
  if (grid.zero_point.defined()) codes = at::sub(codes, grid.zero_point);
  return at::mul(codes, grid.scale);
}

at::Tensor FakeQuantizeNoGrad(const at::Tensor& x, const UniformGrid& grid) {
  at::NoGradGuard no_grad;
  if (CanFuseFakeQuantize(x, grid)) return FusedFakeQuantize(x, grid);
  return DequantizeFromGrid(QuantizeToGrid(x, grid), grid);
}

at::Tensor FakeQuantizeSte(const at::Tensor& x, const UniformGrid& grid, SteGradient ste) {
  if (!at::GradMode::is_enabled() || !x.requires_grad()) return FakeQuantizeNoGrad(x, grid);
  return FakeQuantFunction::apply(x, grid, ste);
}

at::Tensor StraightThrough(const at::Tensor& x, const at::Tensor& value) {
  TORCH_CHECK(x.sizes() == value.sizes(), "StraightThrough: shape mismatch ", x.sizes(), " vs ",
              value.sizes());
  if (!at::GradMode::is_enabled() || !x.requires_grad()) return value;
  return IdentityGradFunction::apply(x, Precomputed{value});
}

}  // namespace psaq::quant
