#include "model/detect/mask_head.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/nn/init.h>

#include <string>

#include "model/detect/tapped_conv.h"

namespace psaq::detect {

using model::TapKind;

namespace {

void KaimingFanOut(const at::Tensor& weight, const at::Tensor& bias) {
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_normal_(weight, 0.0, torch::kFanOut, torch::kReLU);
  bias.zero_();
}

}  // namespace

MaskHeadImpl::MaskHeadImpl(int in_channels, int num_convs, int conv_channels, int num_classes,
                           const model::TapScope& scope)
    : in_channels_(in_channels), taps_(scope.taps()) {
  TORCH_CHECK(in_channels > 0 && num_convs > 0 && conv_channels > 0 && num_classes > 0,
              "MaskHead: sizes must be positive");
  auto convs = register_module("convs", std::make_shared<torch::nn::Module>("ModuleList"));
  for (int k = 0; k < num_convs; ++k) {
    auto holder = convs->register_module(std::to_string(k),
                                         std::make_shared<torch::nn::Module>("ConvModule"));
    convs_.push_back(holder->register_module(
        "conv", torch::nn::Conv2d(
                    torch::nn::Conv2dOptions(k == 0 ? in_channels : conv_channels, conv_channels, 3)
                        .padding(1))));
    KaimingFanOut(convs_.back()->weight, convs_.back()->bias);
  }
  upsample_ = register_module(
      "upsample",
      torch::nn::ConvTranspose2d(
          torch::nn::ConvTranspose2dOptions(conv_channels, conv_channels, 2).stride(2)));
  logits_ = register_module(
      "conv_logits", torch::nn::Conv2d(torch::nn::Conv2dOptions(conv_channels, num_classes, 1)));
  KaimingFanOut(upsample_->weight, upsample_->bias);
  KaimingFanOut(logits_->weight, logits_->bias);
  for (int k = 0; k < num_convs; ++k) {
    const std::string p = "convs." + std::to_string(k) + ".conv.";
    conv_w_.push_back(scope.Register(p + "weight", TapKind::kWeight));
    conv_out_.push_back(scope.Register(p + "out", TapKind::kActivation));
  }
  up_w_ = scope.Register("upsample.weight", TapKind::kWeight);
  up_out_ = scope.Register("upsample.out", TapKind::kActivation);
  logits_w_ = scope.Register("conv_logits.weight", TapKind::kWeight);
  logits_out_ = scope.Register("conv_logits.out", TapKind::kActivation);
}

at::Tensor MaskHeadImpl::forward(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == in_channels_, "MaskHead: expected [R, ", in_channels_,
              ", S, S], got ", x.sizes());
  at::Tensor h = x;
  for (size_t k = 0; k < convs_.size(); ++k) {
    h = taps_->Apply(conv_out_[k], at::relu(TappedConv2d(*taps_, conv_w_[k], convs_[k], h, 1, 1)));
  }
  at::Tensor w = taps_->Apply(up_w_, upsample_->weight);
  h = taps_->Apply(up_out_, at::relu(at::conv_transpose2d(h, w, upsample_->bias, {2, 2})));
  return taps_->Apply(logits_out_, TappedConv2d(*taps_, logits_w_, logits_, h));
}

}  // namespace psaq::detect
