// Global multi-head self-attention, as timm's layers/attention.py Attention (the non-fused path,
// whose op order the quantization points follow): qkv Linear, q·scale, q·kᵀ, softmax, ·v, proj.
//
// Parameters (timm names, relative to the module): qkv.weight [3C, C], qkv.bias [3C] (when
// qkv_bias), proj.weight [C, C], proj.bias [C].
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <string>

#include "model/layer_util.h"

namespace psaq::model {

// The point name of the post-softmax attention probabilities, here and in WindowAttention
// (model/window_attention.h): the activation tap "<attention path>.softmax", [B, H, N, N] with
// values in [0, 1]. PSAQ leaves it in float (quant/ keeps it at 32 bits under its psaq
// quantizer); RepQ quantizes it (quant/log_sqrt2_quantizer.h).
inline constexpr const char* kSoftmaxPoint = "softmax";

struct AttentionOptions {
  AttentionOptions(int dim, int num_heads) : dim_(dim), num_heads_(num_heads) {}
  TORCH_ARG(int, dim);        // C; a multiple of num_heads
  TORCH_ARG(int, num_heads);  // H; head width d = C / H, scale = d^-0.5
  TORCH_ARG(bool, qkv_bias) = true;
};

// Taps (in order; prefix p = the module's path, e.g. "blocks.3.attn"):
//   weight "<p>.qkv.weight"; act "<p>.qkv.out" [B, N, 3C] (q, k and v together);
//   act "<p>.logits" on (q·scale)·kᵀ [B, H, N, N] (the softmax and its output are not tapped);
//   act "<p>.av" on softmax·v [B, H, N, d];
//   feature `av_mean_name` = mean of av over heads [B, N, d], computed only when wanted;
//   weight "<p>.proj.weight"; act "<p>.proj.out" [B, N, C].
class AttentionImpl : public torch::nn::Module {
 public:
  // `av_mean_name`: the full name of the head-averaged A·V feature tap ("blocks.3.av_mean").
  AttentionImpl(const AttentionOptions& options, const TapScope& scope,
                const std::string& av_mean_name);

  // x: [B, N, C] -> [B, N, C].
  at::Tensor forward(const at::Tensor& x);

 private:
  AttentionOptions options_;
  double scale_;
  std::shared_ptr<TapSet> taps_;
  torch::nn::Linear qkv_{nullptr};
  torch::nn::Linear proj_{nullptr};
  int qkv_weight_tap_ = -1;
  int qkv_out_tap_ = -1;
  int logits_tap_ = -1;
  int softmax_tap_ = -1;  // the attention probabilities (model/tap.h kSoftmaxPoint)
  int av_tap_ = -1;
  int av_mean_tap_ = -1;
  int proj_weight_tap_ = -1;
  int proj_out_tap_ = -1;
};
TORCH_MODULE(Attention);

}  // namespace psaq::model
