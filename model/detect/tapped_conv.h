// Conv2d through a weight tap, as TappedLinear (model/layer_util.h) for Linear: the weight tap
// sees the parameter itself and the convolution uses what the observer returns.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/modules/conv.h>

#include <cstdint>

#include "model/tap.h"

namespace psaq::detect {

// x: [B, Cin, H, W] -> conv2d(x, taps.Apply(weight_tap, conv->weight), conv->bias, stride,
// padding). stride/padding are passed by the caller (the module that built `conv` knows them).
inline at::Tensor TappedConv2d(const model::TapSet& taps, int weight_tap,
                               const torch::nn::Conv2d& conv, const at::Tensor& x,
                               int64_t stride = 1, int64_t padding = 0) {
  return at::conv2d(x, taps.Apply(weight_tap, conv->weight), conv->bias, {stride, stride},
                    {padding, padding});
}

}  // namespace psaq::detect
