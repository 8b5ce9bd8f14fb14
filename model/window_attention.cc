#include "model/window_attention.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cmath>

#include "model/attention.h"  // kSoftmaxPoint

namespace psaq::model {

at::Tensor RelativePositionIndex(int window_size) {
  TORCH_CHECK(window_size > 0, "RelativePositionIndex: window_size must be positive");
  const int64_t W = window_size;
  at::Tensor r = at::arange(W, at::kLong);
  // Token t = y·W + x (row-major in the window): its coordinates.
  at::Tensor ys = r.repeat_interleave(W);                       // [W²]
  at::Tensor xs = r.repeat({W});                                // [W²]
  at::Tensor dy = ys.unsqueeze(1) - ys.unsqueeze(0) + (W - 1);  // [W², W²], in [0, 2W-2]
  at::Tensor dx = xs.unsqueeze(1) - xs.unsqueeze(0) + (W - 1);
  return dy * (2 * W - 1) + dx;
}

WindowAttentionImpl::WindowAttentionImpl(const WindowAttentionOptions& options,
                                         const TapScope& scope, const std::string& av_mean_name)
    : options_(options), taps_(scope.taps()) {
  TORCH_CHECK(
      options.num_heads() > 0 && options.dim() > 0 && options.dim() % options.num_heads() == 0,
      "WindowAttention: dim ", options.dim(), " is not a positive multiple of num_heads ",
      options.num_heads());
  const int head_dim = options.dim() / options.num_heads();
  scale_ = std::pow(static_cast<double>(head_dim), -0.5);  // as timm: head_dim ** -0.5
  const int64_t W = options.window_size();
  relative_position_bias_table_ = register_parameter(
      "relative_position_bias_table", at::zeros({(2 * W - 1) * (2 * W - 1), options.num_heads()}));
  TruncNormal_(relative_position_bias_table_, 0.02);
  relative_position_index_ =
      ConstantCache(RelativePositionIndex(options.window_size()).reshape({-1}));
  qkv_ = register_module(
      "qkv",
      torch::nn::Linear(
          torch::nn::LinearOptions(options.dim(), 3 * options.dim()).bias(options.qkv_bias())));
  proj_ = register_module("proj", torch::nn::Linear(options.dim(), options.dim()));
  InitLinearTimm(qkv_);
  InitLinearTimm(proj_);

  qkv_weight_tap_ = scope.Register("qkv.weight", TapKind::kWeight);
  qkv_out_tap_ = scope.Register("qkv.out", TapKind::kActivation);
  logits_tap_ = scope.Register("logits", TapKind::kActivation);
  rel_pos_bias_tap_ = scope.Register("rel_pos_bias", TapKind::kActivation);
  logits_bias_tap_ = scope.Register("logits_bias", TapKind::kActivation);
  softmax_tap_ = scope.Register(kSoftmaxPoint, TapKind::kActivation);
  av_tap_ = scope.Register("av", TapKind::kActivation);
  av_mean_tap_ = taps_->Register(av_mean_name, TapKind::kFeature);
  proj_weight_tap_ = scope.Register("proj.weight", TapKind::kWeight);
  proj_out_tap_ = scope.Register("proj.out", TapKind::kActivation);
}

at::Tensor WindowAttentionImpl::forward(const at::Tensor& x, const at::Tensor& mask) {
  const int64_t Bw = x.size(0);  // B · nW
  const int64_t N = x.size(1);
  const int64_t C = options_.dim();
  const int64_t H = options_.num_heads();
  TORCH_CHECK(N == static_cast<int64_t>(options_.window_size()) * options_.window_size(),
              "WindowAttention: expected ", options_.window_size(), "² tokens per window, got ", N);

  at::Tensor qkv = taps_->Apply(qkv_out_tap_, TappedLinear(*taps_, qkv_weight_tap_, qkv_, x));
  qkv = qkv.reshape({Bw, N, 3, H, C / H}).permute({2, 0, 3, 1, 4});  // [3, B', H, N, d]
  at::Tensor q = qkv[0] * scale_;
  at::Tensor k = qkv[1];
  at::Tensor v = qkv[2];

  at::Tensor logits = taps_->Apply(logits_tap_, at::matmul(q, k.transpose(-2, -1)));  // [B',H,N,N]
  const at::Tensor& index = relative_position_index_.Get(x.device(), at::kLong);
  at::Tensor bias = relative_position_bias_table_
                        .index_select(0, index)  // [N·N, H]
                        .view({N, N, H})
                        .permute({2, 0, 1})
                        .contiguous();  // [H, N, N]
  bias = taps_->Apply(rel_pos_bias_tap_, bias);
  logits = taps_->Apply(logits_bias_tap_, logits + bias.unsqueeze(0));
  if (mask.defined()) {
    const int64_t nW = mask.size(0);
    logits = (logits.reshape({Bw / nW, nW, H, N, N}) + mask.unsqueeze(1).unsqueeze(0))
                 .reshape({Bw, H, N, N});
  }
  at::Tensor attn = taps_->Apply(softmax_tap_, at::softmax(logits, -1));
  at::Tensor av = taps_->Apply(av_tap_, at::matmul(attn, v));                   // [B', H, N, d]
  if (taps_->Wants(TapKind::kFeature)) taps_->Apply(av_mean_tap_, av.mean(1));  // [B', N, d]

  at::Tensor y = av.transpose(1, 2).reshape({Bw, N, C});
  y = TappedLinear(*taps_, proj_weight_tap_, proj_, y);
  return taps_->Apply(proj_out_tap_, y);
}

}  // namespace psaq::model
