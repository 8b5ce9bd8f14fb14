// mmdetection's FPN neck (mmdet/models/necks/fpn.py) as the Swin Mask R-CNN configures it:
// start_level 0, add_extra_convs=False, no norm, no activation, upsample_cfg mode 'nearest'.
//   laterals[i] = lateral_convs[i](inputs[i])                       (1x1 conv)
//   for i = L-1 .. 1: laterals[i-1] += nearest-resize(laterals[i] to laterals[i-1]'s size)
//   outs[i] = fpn_convs[i](laterals[i])                             (3x3 conv, padding 1)
//   extra levels (num_outs > L): outs.append(max_pool2d(outs[-1], kernel 1, stride 2))
//
// Parameters (under "neck."): lateral_convs.<i>.conv.{weight [F, C_i, 1, 1], bias [F]},
// fpn_convs.<i>.conv.{weight [F, F, 3, 3], bias [F]} (ConvModule with bias='auto' = bias when
// there is no norm).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <vector>

#include "model/layer_util.h"

namespace psaq::detect {

// Taps (prefix p, e.g. "neck"), in forward order: per level i: weight
// "<p>.lateral_convs.<i>.conv.weight", act "<p>.lateral_convs.<i>.conv.out"; per i = L-1..1:
// act "<p>.top_down.<i-1>" (the sum); per level i: weight "<p>.fpn_convs.<i>.conv.weight", act
// "<p>.fpn_convs.<i>.conv.out". (Max pooling is not tapped: it does not change values.)
class FpnImpl : public torch::nn::Module {
 public:
  // in_channels: channels of each backbone level (L of them); out_channels F; num_outs >= L.
  // Convs get mmdet's init (xavier_uniform, bias 0) from the global torch RNG.
  FpnImpl(std::vector<int> in_channels, int out_channels, int num_outs,
          const model::TapScope& scope);

  // inputs: L tensors [B, C_i, H_i, W_i] -> num_outs tensors [B, F, H_i, W_i] (extra levels
  // ceil-halve the last). Throws c10::Error for a wrong count or channel number.
  std::vector<at::Tensor> forward(const std::vector<at::Tensor>& inputs);

 private:
  std::vector<int> in_channels_;
  int num_outs_;
  std::shared_ptr<model::TapSet> taps_;
  std::vector<torch::nn::Conv2d> lateral_, fpn_;
  std::vector<int> lateral_w_, lateral_out_, top_down_, fpn_w_, fpn_out_;
};
TORCH_MODULE(Fpn);

}  // namespace psaq::detect
