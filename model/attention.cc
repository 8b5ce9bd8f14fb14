#include "model/attention.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cmath>

namespace psaq::model {

AttentionImpl::AttentionImpl(const AttentionOptions& options, const TapScope& scope,
                             const std::string& av_mean_name)
    : options_(options), taps_(scope.taps()) {
  TORCH_CHECK(
      options.num_heads() > 0 && options.dim() > 0 && options.dim() % options.num_heads() == 0,
      "Attention: dim ", options.dim(), " is not a positive multiple of num_heads ",
      options.num_heads());
  const int head_dim = options.dim() / options.num_heads();
  scale_ = std::pow(static_cast<double>(head_dim), -0.5);  // as timm: head_dim ** -0.5
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
  softmax_tap_ = scope.Register(kSoftmaxPoint, TapKind::kActivation);
  av_tap_ = scope.Register("av", TapKind::kActivation);
  av_mean_tap_ = taps_->Register(av_mean_name, TapKind::kFeature);
  proj_weight_tap_ = scope.Register("proj.weight", TapKind::kWeight);
  proj_out_tap_ = scope.Register("proj.out", TapKind::kActivation);
}

at::Tensor AttentionImpl::forward(const at::Tensor& x) {
  const int64_t B = x.size(0);
  const int64_t N = x.size(1);
  const int64_t C = options_.dim();
  const int64_t H = options_.num_heads();

  at::Tensor qkv = taps_->Apply(qkv_out_tap_, TappedLinear(*taps_, qkv_weight_tap_, qkv_, x));
  qkv = qkv.reshape({B, N, 3, H, C / H}).permute({2, 0, 3, 1, 4});  // [3, B, H, N, d]
  at::Tensor q = qkv[0] * scale_;
  at::Tensor k = qkv[1];
  at::Tensor v = qkv[2];

  at::Tensor logits = taps_->Apply(logits_tap_, at::matmul(q, k.transpose(-2, -1)));  // [B,H,N,N]
  at::Tensor attn = taps_->Apply(softmax_tap_, at::softmax(logits, -1));
  at::Tensor av = taps_->Apply(av_tap_, at::matmul(attn, v));                   // [B, H, N, d]
  if (taps_->Wants(TapKind::kFeature)) taps_->Apply(av_mean_tap_, av.mean(1));  // [B, N, d]

  at::Tensor y = av.transpose(1, 2).reshape({B, N, C});
  y = TappedLinear(*taps_, proj_weight_tap_, proj_, y);
  return taps_->Apply(proj_out_tap_, y);
}

}  // namespace psaq::model
