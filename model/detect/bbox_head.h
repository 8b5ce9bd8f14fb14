// mmdetection's Shared2FCBBoxHead (mmdet/models/roi_heads/bbox_heads/convfc_bbox_head.py,
// num_shared_fcs=2, no convs, reg_class_agnostic=False) on RoI features:
//   h = relu(shared_fcs.1(relu(shared_fcs.0(flatten(x)))))
//   cls_score = fc_cls(h)   [R, num_classes + 1]  (background is the LAST column, softmax)
//   bbox_pred = fc_reg(h)   [R, 4·num_classes]    (class k's deltas at 4k .. 4k+3)
//
// Parameters (under "roi_head.bbox_head."): shared_fcs.0.{weight [D, C·S·S], bias},
// shared_fcs.1.{weight [D, D], bias}, fc_cls.{weight [K+1, D], bias}, fc_reg.{weight [4K, D],
// bias}.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <utility>

#include "model/layer_util.h"

namespace psaq::detect {

// Taps (prefix p = "roi_head.bbox_head"), in forward order: weight "<p>.shared_fcs.0.weight",
// act "<p>.shared_fcs.0.out" (after the ReLU), weight "<p>.shared_fcs.1.weight", act
// "<p>.shared_fcs.1.out", weight "<p>.fc_cls.weight", act "<p>.fc_cls.out", weight
// "<p>.fc_reg.weight", act "<p>.fc_reg.out".
class BBoxHeadImpl : public torch::nn::Module {
 public:
  // in_channels C, roi_size S, fc_out_channels D, num_classes K. mmdet's init from the global
  // torch RNG (shared fcs Xavier-uniform, fc_cls normal std 0.01, fc_reg normal std 0.001, biases
  // 0).
  BBoxHeadImpl(int in_channels, int roi_size, int fc_out_channels, int num_classes,
               const model::TapScope& scope);

  // x: [R, C, S, S] -> {cls_score [R, K+1], bbox_pred [R, 4K]}. R may be 0.
  std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& x);

 private:
  int in_channels_, roi_size_;
  std::shared_ptr<model::TapSet> taps_;
  torch::nn::Linear fc0_{nullptr}, fc1_{nullptr}, cls_{nullptr}, reg_{nullptr};
  int fc0_w_ = -1, fc0_out_ = -1, fc1_w_ = -1, fc1_out_ = -1, cls_w_ = -1, cls_out_ = -1,
      reg_w_ = -1, reg_out_ = -1;
};
TORCH_MODULE(BBoxHead);

}  // namespace psaq::detect
