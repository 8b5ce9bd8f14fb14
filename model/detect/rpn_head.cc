#include "model/detect/rpn_head.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/nn/init.h>

#include <string>

namespace psaq::detect {

using model::TapKind;

namespace {

torch::nn::Conv2d NormalInitConv(torch::nn::Conv2d conv) {
  // mmdet's RPNHead.init_cfg: Normal(layer='Conv2d', std=0.01), bias 0.
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(conv->weight, 0.0, 0.01);
  conv->bias.zero_();
  return conv;
}

}  // namespace

RpnHeadImpl::RpnHeadImpl(int in_channels, int feat_channels, int num_anchors, int num_levels,
                         const model::TapScope& scope)
    : in_channels_(in_channels), num_levels_(num_levels), taps_(scope.taps()) {
  TORCH_CHECK(in_channels > 0 && feat_channels > 0 && num_anchors > 0 && num_levels > 0,
              "RpnHead: sizes must be positive");
  conv_ = register_module("rpn_conv",
                          NormalInitConv(torch::nn::Conv2d(
                              torch::nn::Conv2dOptions(in_channels, feat_channels, 3).padding(1))));
  cls_ = register_module(
      "rpn_cls",
      NormalInitConv(torch::nn::Conv2d(torch::nn::Conv2dOptions(feat_channels, num_anchors, 1))));
  reg_ = register_module("rpn_reg", NormalInitConv(torch::nn::Conv2d(torch::nn::Conv2dOptions(
                                        feat_channels, 4 * num_anchors, 1))));
  conv_w_ = scope.Register("rpn_conv.weight", TapKind::kWeight);
  cls_w_ = scope.Register("rpn_cls.weight", TapKind::kWeight);
  reg_w_ = scope.Register("rpn_reg.weight", TapKind::kWeight);
  for (int l = 0; l < num_levels; ++l) {
    const std::string s = std::to_string(l);
    conv_out_.push_back(scope.Register("rpn_conv.out." + s, TapKind::kActivation));
    cls_out_.push_back(scope.Register("rpn_cls.out." + s, TapKind::kActivation));
    reg_out_.push_back(scope.Register("rpn_reg.out." + s, TapKind::kActivation));
  }
}

RpnOutputs RpnHeadImpl::forward(const std::vector<at::Tensor>& features) {
  TORCH_CHECK(static_cast<int>(features.size()) == num_levels_, "RpnHead: expected ", num_levels_,
              " levels, got ", features.size());
  const at::Tensor wc = taps_->Apply(conv_w_, conv_->weight);
  const at::Tensor wl = taps_->Apply(cls_w_, cls_->weight);
  const at::Tensor wr = taps_->Apply(reg_w_, reg_->weight);
  RpnOutputs out;
  for (int l = 0; l < num_levels_; ++l) {
    const at::Tensor& x = features[static_cast<size_t>(l)];
    TORCH_CHECK(x.dim() == 4 && x.size(1) == in_channels_, "RpnHead: level ", l, " expected [B, ",
                in_channels_, ", H, W], got ", x.sizes());
    at::Tensor h = at::relu(at::conv2d(x, wc, conv_->bias, {1, 1}, {1, 1}));
    h = taps_->Apply(conv_out_[l], h);
    out.cls.push_back(taps_->Apply(cls_out_[l], at::conv2d(h, wl, cls_->bias)));
    out.reg.push_back(taps_->Apply(reg_out_[l], at::conv2d(h, wr, reg_->bias)));
  }
  return out;
}

}  // namespace psaq::detect
