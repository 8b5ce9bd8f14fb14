// timm's VisionTransformer (models/vision_transformer.py), which DeiT also uses, with its default
// options: class token, learned pos_embed covering the class token (no_embed_class=False), no
// pre-norm, final LayerNorm, global_pool='token', a Linear head. Parameter names are timm's, so a
// timm state dict loads as is:
//   cls_token [1, 1, C], pos_embed [1, N+1, C], patch_embed.proj.{weight,bias},
//   blocks.<i>.* (see vit_block.h), norm.{weight,bias} [C], head.{weight,bias} (num_classes > 0).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <vector>

#include "model/config.h"
#include "model/patch_embed.h"
#include "model/vision_model.h"
#include "model/vit_block.h"

namespace psaq::model {

// Taps, in forward order (block taps: see vit_block.h, with p = "blocks.<i>"):
//   act "input"; weight "patch_embed.proj.weight"; act "patch_embed.out" [B, N, C];
//   act "embed.cat" [B, N+1, C] (class token concatenated); act "pos_embed" [1, N+1, C] (the
//   parameter itself); act "embed.out" (the sum); blocks.0 ... blocks.<depth-1>;
//   act "pool.out" [B, C] (final LayerNorm, then the class token);
//   with a head: weight "head.weight"; act "head.out" [B, num_classes].
// block_paths(): "blocks.0", "blocks.1", ...
class VisionTransformer : public VisionModel {
 public:
  // REQUIRES: config.arch == Arch::kViT. Throws c10::Error (TORCH_CHECK) for inconsistent
  // shapes (CreateModel validates the config first, with clearer messages). Parameters get timm's
  // initialisation from the global torch RNG.
  explicit VisionTransformer(const ModelConfig& config);

  // x: [B, in_chans, img_size, img_size], same dtype/device as the parameters.
  // Returns logits [B, num_classes] (pooled features [B, C] when num_classes == 0).
  at::Tensor forward(const at::Tensor& x) override;

 private:
  ViTConfig vit_;
  PatchEmbed patch_embed_{nullptr};
  at::Tensor cls_token_;                   // [1, 1, C]
  at::Tensor pos_embed_;                   // [1, N+1, C]
  torch::nn::ModuleList blocks_{nullptr};  // registered as "blocks"
  std::vector<ViTBlock> block_list_;       // the same blocks, typed
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear head_{nullptr};
  int input_tap_ = -1;
  int embed_cat_tap_ = -1;
  int pos_embed_tap_ = -1;
  int embed_out_tap_ = -1;
  int pool_out_tap_ = -1;
  int head_weight_tap_ = -1;
  int head_out_tap_ = -1;
};

// A randomly initialised ViT/DeiT for `config` (arch kViT).
ModelPtr CreateViT(const ModelConfig& config);

}  // namespace psaq::model
