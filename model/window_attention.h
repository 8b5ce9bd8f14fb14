// Window multi-head self-attention with a relative-position bias, as timm's
// models/swin_transformer.py WindowAttention (the non-fused path, whose op order the quantization
// points follow): qkv Linear, q·scale, q·kᵀ, + bias table gathered by the relative-position
// index, + the shift mask (0 / -100) when given, softmax, ·v, proj.
//
// Parameters (timm names, relative to the module): relative_position_bias_table
// [(2W-1)², H], qkv.weight [3C, C], qkv.bias [3C] (when qkv_bias), proj.weight [C, C],
// proj.bias [C]. timm's relative_position_index is a non-persistent buffer; here it is a plain
// member (never in the state dict), built on the CPU and cached per device.
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

// timm's get_relative_position_index for a square window: int64 [W², W²] with entries in
// [0, (2W-1)²), index[i][j] = (dy + W-1)·(2W-1) + (dx + W-1) for token i minus token j.
at::Tensor RelativePositionIndex(int window_size);

struct WindowAttentionOptions {
  WindowAttentionOptions(int dim, int num_heads, int window_size)
      : dim_(dim), num_heads_(num_heads), window_size_(window_size) {}
  TORCH_ARG(int, dim);          // C; a multiple of num_heads
  TORCH_ARG(int, num_heads);    // H; head width d = C / H, scale = d^-0.5
  TORCH_ARG(int, window_size);  // W (square window); tokens per window N = W²
  TORCH_ARG(bool, qkv_bias) = true;
};

// Taps (in order; prefix p = the module's path, e.g. "layers.1.blocks.0.attn"):
//   weight "<p>.qkv.weight"; act "<p>.qkv.out" [B', N, 3C]; act "<p>.logits" on (q·scale)·kᵀ
//   [B', H, N, N]; act "<p>.rel_pos_bias" on the gathered bias [H, N, N]; act "<p>.logits_bias"
//   on logits + bias (the shift mask and the softmax are not tapped); act "<p>.av" [B', H, N, d];
//   feature `av_mean_name` = av averaged over heads [B', N, d] (only when wanted);
//   weight "<p>.proj.weight"; act "<p>.proj.out" [B', N, C].   (B' = B · windows)
class WindowAttentionImpl : public torch::nn::Module {
 public:
  WindowAttentionImpl(const WindowAttentionOptions& options, const TapScope& scope,
                      const std::string& av_mean_name);

  // x: [B·nW, N, C], windows batch-major (index b·nW + w, as timm's window_partition gives).
  // mask: undefined, or the additive shift mask [nW, N, N] (0 / -100), same dtype/device as x.
  // Returns [B·nW, N, C].
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask = at::Tensor());

 private:
  WindowAttentionOptions options_;
  double scale_;
  std::shared_ptr<TapSet> taps_;
  at::Tensor relative_position_bias_table_;  // [(2W-1)², H]
  ConstantCache relative_position_index_;    // int64 [W²·W²] (flattened)
  torch::nn::Linear qkv_{nullptr};
  torch::nn::Linear proj_{nullptr};
  int qkv_weight_tap_ = -1;
  int qkv_out_tap_ = -1;
  int logits_tap_ = -1;
  int rel_pos_bias_tap_ = -1;
  int logits_bias_tap_ = -1;
  int softmax_tap_ = -1;  // the attention probabilities (model/tap.h kSoftmaxPoint)
  int av_tap_ = -1;
  int av_mean_tap_ = -1;
  int proj_weight_tap_ = -1;
  int proj_out_tap_ = -1;
};
TORCH_MODULE(WindowAttention);

}  // namespace psaq::model
