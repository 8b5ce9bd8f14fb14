#include "model/swin_block.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include "model/token_permutation.h"

namespace psaq::model {

at::Tensor WindowPartition(const at::Tensor& x, int window_size) {
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const int64_t ws = window_size;
  TORCH_CHECK(H % ws == 0 && W % ws == 0, "WindowPartition: ", H, "x", W,
              " is not tiled by window ", ws);
  return x.reshape({B, H / ws, ws, W / ws, ws, C})
      .permute({0, 1, 3, 2, 4, 5})
      .reshape({-1, ws * ws, C});
}

at::Tensor WindowReverse(const at::Tensor& windows, int window_size, int64_t height,
                         int64_t width) {
  const int64_t ws = window_size;
  const int64_t C = windows.size(-1);
  return windows.reshape({-1, height / ws, width / ws, ws, ws, C})
      .permute({0, 1, 3, 2, 4, 5})
      .reshape({-1, height, width, C});
}

at::Tensor ShiftedWindowMask(int resolution, int window_size, int shift_size) {
  return ShiftedWindowMask(int64_t{resolution}, int64_t{resolution}, window_size, shift_size);
}

at::Tensor ShiftedWindowMask(int64_t height, int64_t width, int window_size, int shift_size) {
  TORCH_CHECK(0 < shift_size && shift_size < window_size && height % window_size == 0 &&
                  width % window_size == 0,
              "ShiftedWindowMask: needs 0 < shift ", shift_size, " < window ", window_size,
              " and the window to tile ", height, "x", width);
  // timm labels the rolled map with 3 x 3 regions: rows/cols [0, R-W), [R-W, R-S), [R-S, R).
  const auto bands = [&](int64_t n) {
    at::Tensor r = at::arange(n, at::kLong);
    return (r >= n - window_size).to(at::kLong) + (r >= n - shift_size).to(at::kLong);
  };
  at::Tensor label =
      (bands(height).unsqueeze(1) * 3 + bands(width).unsqueeze(0)).to(at::kFloat);  // [H, W]
  at::Tensor windows =
      WindowPartition(label.view({1, height, width, 1}), window_size).squeeze(-1);  // [nW, N]
  at::Tensor diff = windows.unsqueeze(1) - windows.unsqueeze(2);                    // [nW, N, N]
  return at::zeros_like(diff).masked_fill(diff != 0, -100.0);
}

SwinBlockImpl::SwinBlockImpl(const SwinBlockOptions& options, const TapScope& scope)
    : resolution_(options.resolution()),
      window_size_(options.window_size()),
      shift_size_(options.shift_size()),
      taps_(scope.taps()) {
  TORCH_CHECK(options.resolution() > 0 && options.window_size() > 0 && options.shift_size() >= 0,
              "SwinBlock: resolution and window_size must be positive, shift_size >= 0");
  if (resolution_ <= window_size_) {  // timm: one window of the whole map, no shift
    window_size_ = resolution_;
    shift_size_ = 0;
  }
  TORCH_CHECK(shift_size_ < window_size_, "SwinBlock: shift_size ", shift_size_,
              " must be smaller than the window ", window_size_);
  TORCH_CHECK(resolution_ % window_size_ == 0, "SwinBlock: window ", window_size_,
              " does not tile the resolution ", resolution_);
  if (shift_size_ > 0) {
    attn_mask_ = ConstantCache(ShiftedWindowMask(resolution_, window_size_, shift_size_));
    const at::Tensor order = ShiftedWindowOrder(resolution_, resolution_, window_size_, shift_size_);
    window_order_ = ConstantCache(order);
    window_inverse_ = ConstantCache(InversePermutation(order));
  }

  const auto ln = [&] {
    return torch::nn::LayerNorm(
        torch::nn::LayerNormOptions({options.dim()}).eps(options.norm_eps()));
  };
  norm1_ = register_module("norm1", ln());
  norm1_out_tap_ = scope.Register("norm1.out", TapKind::kActivation);
  attn_ = register_module(
      "attn",
      WindowAttention(WindowAttentionOptions(options.dim(), options.num_heads(), window_size_)
                          .qkv_bias(options.qkv_bias()),
                      scope.Child("attn"), scope.Name("av_mean")));
  add1_tap_ = scope.Register("add1", TapKind::kActivation);
  norm2_ = register_module("norm2", ln());
  norm2_out_tap_ = scope.Register("norm2.out", TapKind::kActivation);
  const int hidden = static_cast<int>(options.dim() * options.mlp_ratio());
  mlp_ = register_module("mlp", Mlp(MlpOptions(options.dim(), hidden), scope.Child("mlp")));
  add2_tap_ = scope.Register("add2", TapKind::kActivation);
  out_tap_ = scope.Register("out", TapKind::kFeature);
}

at::Tensor SwinBlockImpl::forward(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == resolution_ && x.size(2) == resolution_,
              "SwinBlock: expected [B, ", resolution_, ", ", resolution_, ", C], got ", x.sizes());
  const int64_t R = resolution_;
  const int s = shift_size_;
  at::Tensor h = taps_->Apply(norm1_out_tap_, norm1_->forward(x));  // [B, R, R, C]
  const int64_t B = x.size(0), C = x.size(3), N = int64_t{window_size_} * window_size_;
  at::Tensor windows;  // [B·nW, N, C]
  at::Tensor mask, order, inverse;
  if (s > 0) {
    // roll(h, -s) then WindowPartition, as one copy (model/token_permutation.h).
    order = window_order_.Get(x.device(), at::kLong);
    inverse = window_inverse_.Get(x.device(), at::kLong);
    windows = PermuteTokens(h.reshape({B, R * R, C}), order, inverse).view({-1, N, C});
    mask = attn_mask_.Get(x.device(), x.scalar_type());
  } else {
    windows = WindowPartition(h, window_size_);
  }
  windows = attn_->forward(windows, mask);
  if (s > 0) {
    // WindowReverse then roll(h, +s): the inverse permutation.
    h = PermuteTokens(windows.reshape({B, R * R, C}), inverse, order).view({B, R, R, C});
  } else {
    h = WindowReverse(windows, window_size_, R, R);  // [B, R, R, C]
  }
  at::Tensor y = taps_->Apply(add1_tap_, x + h);
  h = taps_->Apply(norm2_out_tap_, norm2_->forward(y));
  y = taps_->Apply(add2_tap_, y + mlp_->forward(h));
  if (taps_->Wants(TapKind::kFeature)) taps_->Apply(out_tap_, y);
  return y;
}

}  // namespace psaq::model
