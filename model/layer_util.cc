#include "model/layer_util.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>
#include <utility>
#include <vector>

namespace psaq::model {
namespace {

// Beyond this many standard deviations on both sides, truncation is not worth sampling for.
constexpr double kPlainNormalSigmas = 6.0;

}  // namespace

TapScope::TapScope(std::shared_ptr<TapSet> taps, std::string prefix)
    : taps_(std::move(taps)), prefix_(std::move(prefix)) {
  TORCH_INTERNAL_ASSERT(taps_ != nullptr, "TapScope needs a TapSet");
}

std::string TapScope::Name(const std::string& point) const {
  return prefix_.empty() ? point : prefix_ + "." + point;
}

TapScope TapScope::Child(const std::string& name) const { return TapScope(taps_, Name(name)); }

int TapScope::Register(const std::string& point, TapKind kind) const {
  return taps_->Register(Name(point), kind);
}

at::Tensor TappedLinear(const TapSet& taps, int weight_tap, const torch::nn::Linear& linear,
                        const at::Tensor& x) {
  // An undefined bias (Linear built with bias=false) is treated as "no bias" by at::linear.
  const at::Tensor weight = taps.Apply(weight_tap, linear->weight);
  if (x.dim() > 3) {
    // LibTorch 1.13's at::linear folds the bias into one addmm only for 2-D and contiguous 3-D
    // inputs; a 4-D one (Swin's NHWC maps) became matmul + a separate bias add, forward and
    // backward. Fold the leading dimensions as timm's Swin does ([B, H·W, C] for its MLP).
    std::vector<int64_t> sizes = x.sizes().vec();
    const at::Tensor y = at::linear(x.reshape({-1, x.size(-1)}), weight, linear->bias);
    sizes.back() = y.size(-1);
    return y.view(sizes);
  }
  return at::linear(x, weight, linear->bias);
}

void TruncNormal_(const at::Tensor& tensor, double std, double a, double b) {
  TORCH_CHECK(std > 0 && a < 0 && b > 0, "TruncNormal_: needs std > 0 and a < 0 < b");
  torch::NoGradGuard no_grad;
  if (-a / std >= kPlainNormalSigmas && b / std >= kPlainNormalSigmas) {
    // Bounds this far out (timm's ±2 with std .02 are 100 sigma) truncate a mass below 1e-8 per
    // draw, so a plain normal draw, clamped for safety, has the same distribution; it is several
    // times faster than the inverse-CDF path below (erfinv dominates model construction).
    tensor.normal_(0.0, std);
    tensor.clamp_(a, b);
    return;
  }
  // timm's method (and PyTorch's nn.init.trunc_normal_): draw uniformly between the CDF values of
  // the bounds, map through the inverse normal CDF, clamp for rounding at the edges.
  const auto norm_cdf = [](double v) { return (1.0 + std::erf(v / std::sqrt(2.0))) / 2.0; };
  const double lo = norm_cdf(a / std);
  const double hi = norm_cdf(b / std);
  tensor.uniform_(2.0 * lo - 1.0, 2.0 * hi - 1.0);
  tensor.erfinv_();
  tensor.mul_(std * std::sqrt(2.0));
  tensor.clamp_(a, b);
}

void InitLinearTimm(const torch::nn::Linear& linear) {
  TruncNormal_(linear->weight, 0.02);
  if (linear->bias.defined()) {
    torch::NoGradGuard no_grad;
    linear->bias.zero_();
  }
}

ConstantCache::ConstantCache(at::Tensor cpu_value) : cpu_(std::move(cpu_value)) {
  TORCH_INTERNAL_ASSERT(cpu_.device().is_cpu(), "ConstantCache holds a CPU tensor");
}

const at::Tensor& ConstantCache::Get(c10::Device device, c10::ScalarType dtype) {
  TORCH_INTERNAL_ASSERT(cpu_.defined(), "ConstantCache::Get on an empty cache");
  if (!cached_.defined() || cached_.device() != device || cached_.scalar_type() != dtype) {
    cached_ = cpu_.to(device, dtype).contiguous();
  }
  return cached_;
}

}  // namespace psaq::model
