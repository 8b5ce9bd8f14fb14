// The Swin backbone of mmdetection's Mask R-CNN (mmdet/models/backbones/swin.py SwinTransformer
// with out_indices = every stage, patch_norm=True, use_abs_pos_embed=False), built from psaq's
// timm-exact pieces: WindowAttention (model/window_attention.h), PatchMerging in nn.Unfold channel
// order (model/patch_merging.h), WindowPartition/WindowReverse/ShiftedWindowMask
// (model/swin_block.h). Eval-mode forward (no dropout / drop path).
//
// Differences from timm's classifier Swin (model/swin.h), all as mmdetection:
//   - any input whose sides are multiples of patch_size * 2^(stages-1) (not only img_size²);
//   - the window is never clipped to the map: ShiftWindowMSA pads the normalised map with zeros on
//     the bottom/right to a multiple of the window, rolls (odd blocks, shift = window/2), builds
//     the -100 mask on the padded size, attends, rolls back and crops;
//   - a stage's PatchMerging comes at its END ("stages.<i>.downsample", i < stages-1; timm has it
//   at
//     the start of the next: "layers.<i+1>.downsample"), and merges in nn.Unfold's channel order;
//   - every stage output (before its downsampling) goes through its own LayerNorm "norm<i>" and is
//     returned NCHW.
//
// Parameters (mmdetection's names, under "backbone."):
//   patch_embed.projection.{weight [C, in, P, P], bias}, patch_embed.norm.{weight,bias} [C],
//   stages.<i>.blocks.<j>.norm1.{weight,bias},
//   stages.<i>.blocks.<j>.attn.w_msa.{relative_position_bias_table, qkv.weight, qkv.bias,
//     proj.weight, proj.bias},
//   stages.<i>.blocks.<j>.norm2.{weight,bias},
//   stages.<i>.blocks.<j>.ffn.layers.0.0.{weight [r·C, C], bias}, ...ffn.layers.1.{weight,bias},
//   stages.<i>.downsample.norm.{weight,bias} [4C], stages.<i>.downsample.reduction.weight [2C, 4C],
//   norm<i>.{weight,bias}.
// mmdetection's persistent relative_position_index buffers are derived constants: not
// parameters here (LoadDetector ignores them in a file, as timm's checkpoint filter does).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "model/detect/detector_config.h"
#include "model/layer_util.h"
#include "model/patch_merging.h"
#include "model/window_attention.h"

namespace psaq::detect {

// mmdet's SwinBlock (ShiftWindowMSA + mmcv FFN, pre-norm, residuals).
// Taps (prefix p, e.g. "backbone.stages.0.blocks.1"): act "<p>.norm1.out" [B, H, W, C]; the
// window attention's taps under "<p>.attn.w_msa" (model/window_attention.h) with feature
// "<p>.av_mean" [B·nW, N, d] (windows of the padded map); act "<p>.add1"; act "<p>.norm2.out";
// weight "<p>.ffn.layers.0.0.weight"; act "<p>.ffn.act" (GELU output); weight
// "<p>.ffn.layers.1.weight"; act "<p>.ffn.out"; act "<p>.add2"; feature "<p>.out" [B, H, W, C].
class SwinDetBlockImpl : public torch::nn::Module {
 public:
  SwinDetBlockImpl(int dim, int num_heads, int window_size, bool shift, int mlp_ratio,
                   bool qkv_bias, double norm_eps, const model::TapScope& scope);

  // x: [B, H, W, C] (any H, W >= 1) -> [B, H, W, C].
  at::Tensor forward(const at::Tensor& x);

  int window_size() const { return window_size_; }
  int shift_size() const { return shift_size_; }

 private:
  // The -100 shift mask for the padded map (cached per padded size).
  const at::Tensor& Mask(int64_t padded_h, int64_t padded_w, const at::Tensor& like);

  int window_size_;
  int shift_size_;
  std::shared_ptr<model::TapSet> taps_;
  torch::nn::LayerNorm norm1_{nullptr};
  model::WindowAttention attn_{nullptr};  // "attn.w_msa"
  torch::nn::LayerNorm norm2_{nullptr};
  torch::nn::Linear fc1_{nullptr};  // "ffn.layers.0.0"
  torch::nn::Linear fc2_{nullptr};  // "ffn.layers.1"
  std::map<std::pair<int64_t, int64_t>, model::ConstantCache> masks_;
  int norm1_out_tap_ = -1, add1_tap_ = -1, norm2_out_tap_ = -1, fc1_weight_tap_ = -1, act_tap_ = -1,
      fc2_weight_tap_ = -1, ffn_out_tap_ = -1, add2_tap_ = -1, out_tap_ = -1;
};
TORCH_MODULE(SwinDetBlock);

// Returned by SwinBackbone::forward.
struct BackboneOutputs {
  std::vector<at::Tensor> features;  // per stage i: norm<i>(stage output), NCHW
                                     // [B, C·2^i, H/(P·2^i), W/(P·2^i)]
};

// Taps, in forward order (root prefix "backbone"): act "backbone.input" is NOT registered here
// (the detector registers "input" first); weight "backbone.patch_embed.projection.weight"; act
// "backbone.patch_embed.projection.out" [B, H', W', C]; act "backbone.patch_embed.norm.out"; per
// stage i: its blocks' taps (SwinDetBlock); for i < stages-1 the downsample's taps
// ("backbone.stages.<i>.downsample.{norm.out, reduction.weight, reduction.out}"); act
// "backbone.norm<i>.out" [B, H_i, W_i, C_i].
class SwinBackboneImpl : public torch::nn::Module {
 public:
  // REQUIRES: a valid config (ValidateDetectorConfig). Parameters get mmdet's init_weights
  // (Linear trunc_normal std .02 bias 0, LayerNorm 1/0, bias tables trunc_normal .02; the patch
  // conv keeps LibTorch's default) from the global torch RNG.
  SwinBackboneImpl(const DetectorConfig& config, const model::TapScope& scope);

  // x: [B, in_chans, H, W] normalised, H and W multiples of config.size_divisor().
  // Throws c10::Error (TORCH_CHECK) naming the expected shape otherwise.
  BackboneOutputs forward(const at::Tensor& x);

  // Block paths ("backbone.stages.0.blocks.0", ...) in forward order.
  const std::vector<std::string>& block_paths() const { return block_paths_; }

 private:
  DetectorConfig config_;
  std::shared_ptr<model::TapSet> taps_;
  torch::nn::Conv2d projection_{nullptr};          // "patch_embed.projection"
  torch::nn::LayerNorm patch_norm_{nullptr};       // "patch_embed.norm"
  std::vector<std::vector<SwinDetBlock>> blocks_;  // [stage][block]
  std::vector<model::PatchMerging> downsample_;    // stages-1 of them
  std::vector<torch::nn::LayerNorm> out_norms_;    // "norm<i>"
  std::vector<std::string> block_paths_;
  int projection_weight_tap_ = -1, projection_out_tap_ = -1, patch_norm_out_tap_ = -1;
  std::vector<int> out_norm_taps_;
};
TORCH_MODULE(SwinBackbone);

}  // namespace psaq::detect
