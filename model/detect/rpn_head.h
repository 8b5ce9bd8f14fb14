// mmdetection's RPNHead (mmdet/models/dense_heads/rpn_head.py) with one convolution and sigmoid
// objectness (use_sigmoid=True, so one class channel per anchor), shared by every FPN level:
//   h = relu(rpn_conv(x))      3x3, padding 1
//   cls = rpn_cls(h)           1x1 -> A channels (A = anchors per position)
//   reg = rpn_reg(h)           1x1 -> 4A channels (anchor a's deltas at 4a .. 4a+3)
//
// Parameters (under "rpn_head."): rpn_conv.{weight [F, C, 3, 3], bias}, rpn_cls.{weight
// [A, F, 1, 1], bias}, rpn_reg.{weight [4A, F, 1, 1], bias}.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <vector>

#include "model/layer_util.h"

namespace psaq::detect {

struct RpnOutputs {
  std::vector<at::Tensor> cls;  // per level [B, A, H_l, W_l] objectness logits
  std::vector<at::Tensor> reg;  // per level [B, 4A, H_l, W_l] deltas
};

// Taps (prefix p = "rpn_head"), in forward order: weight "<p>.rpn_conv.weight", weight
// "<p>.rpn_cls.weight", weight "<p>.rpn_reg.weight" (each applied once per forward, the weights
// being shared by the levels); then per level l: act "<p>.rpn_conv.out.<l>" (after the ReLU),
// act "<p>.rpn_cls.out.<l>", act "<p>.rpn_reg.out.<l>".
class RpnHeadImpl : public torch::nn::Module {
 public:
  // Convs get mmdet's init (normal std 0.01, bias 0) from the global torch RNG.
  RpnHeadImpl(int in_channels, int feat_channels, int num_anchors, int num_levels,
              const model::TapScope& scope);

  // features: num_levels tensors [B, in_channels, H_l, W_l]. Throws c10::Error otherwise.
  RpnOutputs forward(const std::vector<at::Tensor>& features);

 private:
  int in_channels_;
  int num_levels_;
  std::shared_ptr<model::TapSet> taps_;
  torch::nn::Conv2d conv_{nullptr}, cls_{nullptr}, reg_{nullptr};
  int conv_w_ = -1, cls_w_ = -1, reg_w_ = -1;
  std::vector<int> conv_out_, cls_out_, reg_out_;
};
TORCH_MODULE(RpnHead);

}  // namespace psaq::detect
