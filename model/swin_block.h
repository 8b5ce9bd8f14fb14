// The Swin transformer block, as timm's models/swin_transformer.py SwinTransformerBlock (no drop
// path): x + window_attention(norm1(x)) with an optional cyclic shift, then + mlp(norm2(x)). NHWC.
//
// Window and shift follow timm: a block whose resolution is <= the window uses one window of the
// whole resolution and no shift; otherwise odd blocks of a stage shift by window/2 (the caller
// passes shift_size). The shifted block rolls by -shift on H and W, partitions into windows,
// attends with the 0/-100 mask that keeps regions apart, reverses the partition and rolls back;
// roll + partition and reverse + roll back are each done as one token permutation
// (model/token_permutation.h), with the same values.
//
// Parameters (timm names, relative to the block): norm1.{weight,bias} [C], attn.* (see
// window_attention.h), norm2.{weight,bias} [C], mlp.* (see mlp.h). timm's attn_mask is a
// non-persistent buffer; here it is a plain member built on the CPU and cached per device/dtype.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <memory>

#include "model/layer_util.h"
#include "model/mlp.h"
#include "model/window_attention.h"

namespace psaq::model {

// timm's window_partition: [B, H, W', C] -> [B·(H/Ws)·(W'/Ws), Ws·Ws, C], windows batch-major and
// row-major over the grid, tokens row-major in a window. REQUIRES: H, W' multiples of Ws.
at::Tensor WindowPartition(const at::Tensor& x, int window_size);
// The inverse of WindowPartition: [B·nW, Ws·Ws, C] -> [B, H, W', C].
at::Tensor WindowReverse(const at::Tensor& windows, int window_size, int64_t height, int64_t width);
// timm's shifted-window mask for a resolution x resolution map: float32 [nW, N, N], 0 where two
// tokens of a window come from the same region of the rolled map, -100 otherwise.
at::Tensor ShiftedWindowMask(int resolution, int window_size, int shift_size);
// The same for a height x width map (both multiples of the window), as mmdetection's
// ShiftWindowMSA builds it on the padded map: rows and columns each fall into the bands
// [0, n-W), [n-W, n-S), [n-S, n). float32 [nW, N, N].
at::Tensor ShiftedWindowMask(int64_t height, int64_t width, int window_size, int shift_size);

struct SwinBlockOptions {
  SwinBlockOptions(int dim, int num_heads, int resolution, int window_size)
      : dim_(dim), num_heads_(num_heads), resolution_(resolution), window_size_(window_size) {}
  TORCH_ARG(int, dim);             // C
  TORCH_ARG(int, num_heads);       // H
  TORCH_ARG(int, resolution);      // side of the (square) input map
  TORCH_ARG(int, window_size);     // requested window; clipped to resolution as timm does
  TORCH_ARG(int, shift_size) = 0;  // requested shift (window/2 on odd blocks); 0 when clipped
  TORCH_ARG(double, mlp_ratio) = 4.0;
  TORCH_ARG(bool, qkv_bias) = true;
  TORCH_ARG(double, norm_eps) = 1e-5;  // nn.LayerNorm default, as timm's Swin
};

// Taps (in order; prefix p = the block's path, e.g. "layers.1.blocks.0"):
//   act "<p>.norm1.out" [B, H, W, C]; the window attention's taps under "<p>.attn" with feature
//   "<p>.av_mean"; act "<p>.add1"; act "<p>.norm2.out"; the MLP's taps under "<p>.mlp";
//   act "<p>.add2"; feature "<p>.out" [B, H, W, C].
class SwinBlockImpl : public torch::nn::Module {
 public:
  SwinBlockImpl(const SwinBlockOptions& options, const TapScope& scope);

  // x: [B, R, R, C] -> [B, R, R, C] (R = resolution).
  at::Tensor forward(const at::Tensor& x);

  int window_size() const { return window_size_; }  // after clipping
  int shift_size() const { return shift_size_; }    // after clipping

 private:
  int resolution_;
  int window_size_;
  int shift_size_;
  std::shared_ptr<TapSet> taps_;
  torch::nn::LayerNorm norm1_{nullptr};
  WindowAttention attn_{nullptr};
  torch::nn::LayerNorm norm2_{nullptr};
  Mlp mlp_{nullptr};
  ConstantCache attn_mask_;  // [nW, N, N]; empty without shift
  ConstantCache window_order_;    // [R·R] int64, ShiftedWindowOrder; empty without shift
  ConstantCache window_inverse_;  // its inverse
  int norm1_out_tap_ = -1;
  int add1_tap_ = -1;
  int norm2_out_tap_ = -1;
  int add2_tap_ = -1;
  int out_tap_ = -1;
};
TORCH_MODULE(SwinBlock);

}  // namespace psaq::model
