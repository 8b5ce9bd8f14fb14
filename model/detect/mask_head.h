// mmdetection's FCNMaskHead (mmdet/models/roi_heads/mask_heads/fcn_mask_head.py, upsample
// 'deconv', class-specific) on mask RoI features:
//   h = relu(convs.k(h)) for k < num_convs        3x3, padding 1 (ConvModule, ReLU)
//   h = relu(upsample(h))                          ConvTranspose2d kernel 2, stride 2
//   logits = conv_logits(h)                        1x1 -> num_classes
//
// Parameters (under "roi_head.mask_head."): convs.<k>.conv.{weight [M, C_k, 3, 3], bias},
// upsample.{weight [M, M, 2, 2] (ConvTranspose2d: [in, out, kH, kW]), bias},
// conv_logits.{weight [K, M, 1, 1], bias}.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <vector>

#include "model/layer_util.h"

namespace psaq::detect {

// Taps (prefix p = "roi_head.mask_head"), in forward order: per conv k: weight
// "<p>.convs.<k>.conv.weight", act "<p>.convs.<k>.conv.out" (after the ReLU); weight
// "<p>.upsample.weight", act "<p>.upsample.out" (after the ReLU); weight
// "<p>.conv_logits.weight", act "<p>.conv_logits.out".
class MaskHeadImpl : public torch::nn::Module {
 public:
  // mmdet's init from the global torch RNG (convs and upsample/logits kaiming-normal fan_out,
  // biases 0).
  MaskHeadImpl(int in_channels, int num_convs, int conv_channels, int num_classes,
               const model::TapScope& scope);

  // x: [R, C, S, S] -> logits [R, K, 2S, 2S]. R may be 0.
  at::Tensor forward(const at::Tensor& x);

 private:
  int in_channels_;
  std::shared_ptr<model::TapSet> taps_;
  std::vector<torch::nn::Conv2d> convs_;
  torch::nn::ConvTranspose2d upsample_{nullptr};
  torch::nn::Conv2d logits_{nullptr};
  std::vector<int> conv_w_, conv_out_;
  int up_w_ = -1, up_out_ = -1, logits_w_ = -1, logits_out_ = -1;
};
TORCH_MODULE(MaskHead);

}  // namespace psaq::detect
