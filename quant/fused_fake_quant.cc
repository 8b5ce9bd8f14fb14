#include "quant/fused_fake_quant.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>

namespace psaq::quant {
namespace {

// Elements per parallel task: large enough that thread start-up is amortised.
constexpr int64_t kGrain = 16384;

template <typename T>
void Kernel(const T* x, T* out, bool* in_range, int64_t n, T scale, T zero, bool has_zero, T qmin,
            T qmax) {
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      T t = x[i] / scale;
      if (has_zero) t = t + zero;
      t = std::nearbyint(t);  // the default rounding mode: half to even, as at::round
      if (in_range != nullptr) in_range[i] = t >= qmin && t <= qmax;
      t = std::min(std::max(t, qmin), qmax);
      if (has_zero) t = t - zero;
      out[i] = t * scale;
    }
  });
}

}  // namespace

bool CanFuseFakeQuantize(const at::Tensor& x, const UniformGrid& grid) {
  const auto dtype = x.scalar_type();
  if (!x.device().is_cpu() || (dtype != at::kFloat && dtype != at::kDouble)) return false;
  if (!grid.scale.defined() || grid.scale.numel() != 1 || !grid.scale.device().is_cpu() ||
      grid.scale.scalar_type() != dtype) {
    return false;
  }
  if (grid.zero_point.defined() &&
      (grid.zero_point.numel() != 1 || !grid.zero_point.device().is_cpu() ||
       grid.zero_point.scalar_type() != dtype)) {
    return false;
  }
  return true;
}

at::Tensor FusedFakeQuantize(const at::Tensor& x, const UniformGrid& grid, at::Tensor* in_range) {
  TORCH_CHECK(CanFuseFakeQuantize(x, grid), "FusedFakeQuantize: needs a CPU float tensor and a "
              "per-tensor grid of its dtype");
  const at::Tensor input = x.contiguous();
  at::Tensor out = at::empty_like(input, at::MemoryFormat::Contiguous);
  bool* mask = nullptr;
  if (in_range != nullptr) {
    *in_range = at::empty(input.sizes(), input.options().dtype(at::kBool));
    mask = in_range->data_ptr<bool>();
  }
  const bool has_zero = grid.zero_point.defined();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "FusedFakeQuantize", [&] {
    Kernel<scalar_t>(input.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), mask, input.numel(),
                     grid.scale.item<scalar_t>(),
                     has_zero ? grid.zero_point.item<scalar_t>() : scalar_t(0), has_zero,
                     static_cast<scalar_t>(grid.qmin), static_cast<scalar_t>(grid.qmax));
  });
  return out;
}

}  // namespace psaq::quant
