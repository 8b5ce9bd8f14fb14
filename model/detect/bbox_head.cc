#include "model/detect/bbox_head.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/nn/init.h>

#include <string>

namespace psaq::detect {

using model::TapKind;

BBoxHeadImpl::BBoxHeadImpl(int in_channels, int roi_size, int fc_out_channels, int num_classes,
                           const model::TapScope& scope)
    : in_channels_(in_channels), roi_size_(roi_size), taps_(scope.taps()) {
  TORCH_CHECK(in_channels > 0 && roi_size > 0 && fc_out_channels > 0 && num_classes > 0,
              "BBoxHead: sizes must be positive");
  // mmdet's state-dict order: BBoxHead.__init__ creates fc_cls and fc_reg before ConvFCBBoxHead
  // adds shared_fcs (and re-creates them in place).
  cls_ = register_module("fc_cls", torch::nn::Linear(fc_out_channels, num_classes + 1));
  reg_ = register_module("fc_reg", torch::nn::Linear(fc_out_channels, 4 * num_classes));
  auto shared = register_module("shared_fcs", std::make_shared<torch::nn::Module>("ModuleList"));
  fc0_ = shared->register_module(
      "0", torch::nn::Linear(in_channels * roi_size * roi_size, fc_out_channels));
  fc1_ = shared->register_module("1", torch::nn::Linear(fc_out_channels, fc_out_channels));
  {
    torch::NoGradGuard no_grad;
    torch::nn::init::xavier_uniform_(fc0_->weight);
    torch::nn::init::xavier_uniform_(fc1_->weight);
    torch::nn::init::normal_(cls_->weight, 0.0, 0.01);
    torch::nn::init::normal_(reg_->weight, 0.0, 0.001);
    for (auto* l : {&fc0_, &fc1_, &cls_, &reg_}) (*l)->bias.zero_();
  }
  fc0_w_ = scope.Register("shared_fcs.0.weight", TapKind::kWeight);
  fc0_out_ = scope.Register("shared_fcs.0.out", TapKind::kActivation);
  fc1_w_ = scope.Register("shared_fcs.1.weight", TapKind::kWeight);
  fc1_out_ = scope.Register("shared_fcs.1.out", TapKind::kActivation);
  cls_w_ = scope.Register("fc_cls.weight", TapKind::kWeight);
  cls_out_ = scope.Register("fc_cls.out", TapKind::kActivation);
  reg_w_ = scope.Register("fc_reg.weight", TapKind::kWeight);
  reg_out_ = scope.Register("fc_reg.out", TapKind::kActivation);
}

std::pair<at::Tensor, at::Tensor> BBoxHeadImpl::forward(const at::Tensor& x) {
  TORCH_CHECK(
      x.dim() == 4 && x.size(1) == in_channels_ && x.size(2) == roi_size_ && x.size(3) == roi_size_,
      "BBoxHead: expected [R, ", in_channels_, ", ", roi_size_, ", ", roi_size_, "], got ",
      x.sizes());
  at::Tensor h = x.flatten(1);  // [R, C·S·S], channel-major as torch's flatten
  h = taps_->Apply(fc0_out_, at::relu(model::TappedLinear(*taps_, fc0_w_, fc0_, h)));
  h = taps_->Apply(fc1_out_, at::relu(model::TappedLinear(*taps_, fc1_w_, fc1_, h)));
  at::Tensor cls = taps_->Apply(cls_out_, model::TappedLinear(*taps_, cls_w_, cls_, h));
  at::Tensor reg = taps_->Apply(reg_out_, model::TappedLinear(*taps_, reg_w_, reg_, h));
  return {cls, reg};
}

}  // namespace psaq::detect
