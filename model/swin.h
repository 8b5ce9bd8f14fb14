// timm's SwinTransformer (models/swin_transformer.py, timm 1.0 layout) with its default options:
// patch embedding with LayerNorm (NHWC), stages whose downsampling comes first (stage s >= 1 starts
// with a PatchMerging at "layers.<s>.downsample"), final LayerNorm, global average pooling over
// H and W, a Linear head at "head.fc". Parameter names are timm's, so a timm state dict loads as
// is: patch_embed.{proj,norm}.*, layers.<s>.downsample.* (s >= 1), layers.<s>.blocks.<j>.* (see
// swin_block.h), norm.{weight,bias}, head.fc.{weight,bias} (num_classes > 0).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "model/config.h"
#include "model/patch_embed.h"
#include "model/patch_merging.h"
#include "model/swin_block.h"
#include "model/vision_model.h"

namespace psaq::model {

// One stage, as timm's SwinTransformerStage: optional PatchMerging "downsample", then "blocks".
// Block j shifts by window/2 when j is odd (clipped by the block, see swin_block.h).
class SwinStageImpl : public torch::nn::Module {
 public:
  // in_dim: channels entering the stage (out_dim/2 when downsampling, else out_dim);
  // resolution: side of the map the blocks see (after downsampling).
  SwinStageImpl(int in_dim, int out_dim, int resolution, int depth, int num_heads, bool downsample,
                const SwinConfig& config, const TapScope& scope);

  // x: [B, R_in, R_in, in_dim] -> [B, R, R, out_dim].
  at::Tensor forward(const at::Tensor& x);

  const std::vector<SwinBlock>& blocks() const { return block_list_; }

 private:
  PatchMerging downsample_{nullptr};
  torch::nn::ModuleList blocks_{nullptr};  // registered as "blocks"
  std::vector<SwinBlock> block_list_;      // the same blocks, typed
};
TORCH_MODULE(SwinStage);

// Taps, in forward order (block taps: see swin_block.h, with p = "layers.<s>.blocks.<j>"):
//   act "input"; weight "patch_embed.proj.weight"; act "patch_embed.proj.out" [B, H, W, C];
//   act "patch_embed.norm.out"; per stage s: (s >= 1) act "layers.<s>.downsample.norm.out",
//   weight "layers.<s>.downsample.reduction.weight", act "layers.<s>.downsample.reduction.out";
//   then its blocks; act "norm.out" [B, H, W, C] (final LayerNorm); act "pool.out" [B, C];
//   with a head: weight "head.fc.weight"; act "head.out" [B, num_classes].
// block_paths(): "layers.0.blocks.0", "layers.0.blocks.1", "layers.1.blocks.0", ...
class SwinTransformer : public VisionModel {
 public:
  // REQUIRES: config.arch == Arch::kSwin. Throws c10::Error (TORCH_CHECK) for inconsistent
  // shapes (CreateModel validates the config first, with clearer messages). Parameters get timm's
  // initialisation from the global torch RNG.
  explicit SwinTransformer(const ModelConfig& config);

  // x: [B, in_chans, img_size, img_size], same dtype/device as the parameters.
  // Returns logits [B, num_classes] (pooled features [B, C_last] when num_classes == 0).
  at::Tensor forward(const at::Tensor& x) override;

 private:
  SwinConfig swin_;
  PatchEmbed patch_embed_{nullptr};
  torch::nn::ModuleList layers_{nullptr};  // registered as "layers"
  std::vector<SwinStage> stage_list_;      // the same stages, typed
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear head_fc_{nullptr};  // "head.fc"
  int input_tap_ = -1;
  int norm_out_tap_ = -1;
  int pool_out_tap_ = -1;
  int head_weight_tap_ = -1;
  int head_out_tap_ = -1;
};

// A randomly initialised Swin for `config` (arch kSwin).
ModelPtr CreateSwin(const ModelConfig& config);

}  // namespace psaq::model
