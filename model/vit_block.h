// The pre-norm transformer block of timm's VisionTransformer (models/vision_transformer.py
// Block, without layer scale or drop path): x + attn(norm1(x)), then + mlp(norm2(x)).
//
// Parameters (timm names, relative to the block): norm1.{weight,bias} [C], attn.* (see
// attention.h), norm2.{weight,bias} [C], mlp.* (see mlp.h).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <memory>

#include "model/attention.h"
#include "model/layer_util.h"
#include "model/mlp.h"

namespace psaq::model {

struct ViTBlockOptions {
  ViTBlockOptions(int dim, int num_heads) : dim_(dim), num_heads_(num_heads) {}
  TORCH_ARG(int, dim);                 // C
  TORCH_ARG(int, num_heads);           // H
  TORCH_ARG(double, mlp_ratio) = 4.0;  // MLP hidden = int(C * mlp_ratio)
  TORCH_ARG(bool, qkv_bias) = true;
  TORCH_ARG(double, norm_eps) = 1e-6;  // timm's ViT LayerNorm eps
};

// Taps (in order; prefix p = the block's path, e.g. "blocks.3"):
//   act "<p>.norm1.out"; the attention's taps under "<p>.attn" with feature "<p>.av_mean";
//   act "<p>.add1" (x + attention branch); act "<p>.norm2.out"; the MLP's taps under "<p>.mlp";
//   act "<p>.add2"; feature "<p>.out" (the block output: add2 after its activation tap).
class ViTBlockImpl : public torch::nn::Module {
 public:
  ViTBlockImpl(const ViTBlockOptions& options, const TapScope& scope);

  // x: [B, N, C] -> [B, N, C].
  at::Tensor forward(const at::Tensor& x);

 private:
  std::shared_ptr<TapSet> taps_;
  torch::nn::LayerNorm norm1_{nullptr};
  Attention attn_{nullptr};
  torch::nn::LayerNorm norm2_{nullptr};
  Mlp mlp_{nullptr};
  int norm1_out_tap_ = -1;
  int add1_tap_ = -1;
  int norm2_out_tap_ = -1;
  int add2_tap_ = -1;
  int out_tap_ = -1;
};
TORCH_MODULE(ViTBlock);

}  // namespace psaq::model
