#include "model/vit_block.h"

#include <ATen/ATen.h>

namespace psaq::model {

ViTBlockImpl::ViTBlockImpl(const ViTBlockOptions& options, const TapScope& scope)
    : taps_(scope.taps()) {
  const auto ln = [&] {
    return torch::nn::LayerNorm(
        torch::nn::LayerNormOptions({options.dim()}).eps(options.norm_eps()));
  };
  // Modules and taps are created in forward order, so tap ids follow the forward pass.
  norm1_ = register_module("norm1", ln());
  norm1_out_tap_ = scope.Register("norm1.out", TapKind::kActivation);
  attn_ = register_module(
      "attn",
      Attention(AttentionOptions(options.dim(), options.num_heads()).qkv_bias(options.qkv_bias()),
                scope.Child("attn"), scope.Name("av_mean")));
  add1_tap_ = scope.Register("add1", TapKind::kActivation);
  norm2_ = register_module("norm2", ln());
  norm2_out_tap_ = scope.Register("norm2.out", TapKind::kActivation);
  const int hidden = static_cast<int>(options.dim() * options.mlp_ratio());
  mlp_ = register_module("mlp", Mlp(MlpOptions(options.dim(), hidden), scope.Child("mlp")));
  add2_tap_ = scope.Register("add2", TapKind::kActivation);
  out_tap_ = scope.Register("out", TapKind::kFeature);
}

at::Tensor ViTBlockImpl::forward(const at::Tensor& x) {
  at::Tensor h = taps_->Apply(norm1_out_tap_, norm1_->forward(x));
  at::Tensor y = taps_->Apply(add1_tap_, x + attn_->forward(h));
  h = taps_->Apply(norm2_out_tap_, norm2_->forward(y));
  y = taps_->Apply(add2_tap_, y + mlp_->forward(h));
  if (taps_->Wants(TapKind::kFeature)) taps_->Apply(out_tap_, y);
  return y;
}

}  // namespace psaq::model
