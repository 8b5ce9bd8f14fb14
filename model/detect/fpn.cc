#include "model/detect/fpn.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/nn/init.h>

#include <string>

#include "model/detect/tapped_conv.h"

namespace psaq::detect {

using model::TapKind;

namespace {

// A ConvModule(conv only) registered as "<index>" in `list` with its Conv2d at "conv".
torch::nn::Conv2d AddConvModule(torch::nn::Module& list, int index, int in, int out, int kernel,
                                int padding) {
  auto holder = list.register_module(std::to_string(index),
                                     std::make_shared<torch::nn::Module>("ConvModule"));
  auto conv = holder->register_module(
      "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).padding(padding)));
  // mmdet's FPN.init_cfg: Xavier(layer='Conv2d', distribution='uniform'), bias 0.
  torch::NoGradGuard no_grad;
  torch::nn::init::xavier_uniform_(conv->weight);
  conv->bias.zero_();
  return conv;
}

}  // namespace

FpnImpl::FpnImpl(std::vector<int> in_channels, int out_channels, int num_outs,
                 const model::TapScope& scope)
    : in_channels_(std::move(in_channels)), num_outs_(num_outs), taps_(scope.taps()) {
  const int L = static_cast<int>(in_channels_.size());
  TORCH_CHECK(L > 0 && out_channels > 0 && num_outs >= L, "Fpn: needs levels, out_channels > 0 ",
              "and num_outs >= levels");
  auto laterals =
      register_module("lateral_convs", std::make_shared<torch::nn::Module>("ModuleList"));
  auto fpns = register_module("fpn_convs", std::make_shared<torch::nn::Module>("ModuleList"));
  for (int i = 0; i < L; ++i) {
    lateral_.push_back(AddConvModule(*laterals, i, in_channels_[i], out_channels, 1, 0));
    fpn_.push_back(AddConvModule(*fpns, i, out_channels, out_channels, 3, 1));
  }
  for (int i = 0; i < L; ++i) {
    const std::string p = "lateral_convs." + std::to_string(i) + ".conv.";
    lateral_w_.push_back(scope.Register(p + "weight", TapKind::kWeight));
    lateral_out_.push_back(scope.Register(p + "out", TapKind::kActivation));
  }
  for (int i = L - 1; i > 0; --i) {
    top_down_.push_back(scope.Register("top_down." + std::to_string(i - 1), TapKind::kActivation));
  }
  for (int i = 0; i < L; ++i) {
    const std::string p = "fpn_convs." + std::to_string(i) + ".conv.";
    fpn_w_.push_back(scope.Register(p + "weight", TapKind::kWeight));
    fpn_out_.push_back(scope.Register(p + "out", TapKind::kActivation));
  }
}

std::vector<at::Tensor> FpnImpl::forward(const std::vector<at::Tensor>& inputs) {
  const size_t L = in_channels_.size();
  TORCH_CHECK(inputs.size() == L, "Fpn: expected ", L, " levels, got ", inputs.size());
  std::vector<at::Tensor> lat(L);
  for (size_t i = 0; i < L; ++i) {
    TORCH_CHECK(inputs[i].dim() == 4 && inputs[i].size(1) == in_channels_[i], "Fpn: level ", i,
                " expected [B, ", in_channels_[i], ", H, W], got ", inputs[i].sizes());
    lat[i] =
        taps_->Apply(lateral_out_[i], TappedConv2d(*taps_, lateral_w_[i], lateral_[i], inputs[i]));
  }
  // Top-down: F.interpolate(mode='nearest', size=the finer level's size), then add.
  for (size_t i = L - 1, k = 0; i > 0; --i, ++k) {
    at::Tensor up = at::upsample_nearest2d(lat[i], {lat[i - 1].size(2), lat[i - 1].size(3)});
    lat[i - 1] = taps_->Apply(top_down_[k], lat[i - 1] + up);
  }
  std::vector<at::Tensor> outs;
  for (size_t i = 0; i < L; ++i) {
    outs.push_back(
        taps_->Apply(fpn_out_[i], TappedConv2d(*taps_, fpn_w_[i], fpn_[i], lat[i], 1, 1)));
  }
  // Extra levels: F.max_pool2d(outs[-1], 1, stride=2) (a strided subsample).
  while (static_cast<int>(outs.size()) < num_outs_) {
    outs.push_back(at::max_pool2d(outs.back(), {1, 1}, {2, 2}));
  }
  return outs;
}

}  // namespace psaq::detect
