#include "model/vit.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <memory>
#include <string>

#include "model/layer_util.h"

namespace psaq::model {

VisionTransformer::VisionTransformer(const ModelConfig& config)
    : VisionModel(config), vit_(config.vit) {
  TORCH_CHECK(config.arch == Arch::kViT, "VisionTransformer: config '", config.name,
              "' is not a ViT config");
  TORCH_CHECK(vit_.depth >= 0, "VisionTransformer: depth must be >= 0, got ", vit_.depth);
  TORCH_CHECK(vit_.num_classes >= 0, "VisionTransformer: num_classes must be >= 0");
  const TapScope root(shared_taps(), "");
  const int C = vit_.embed_dim;

  input_tap_ = root.Register("input", TapKind::kActivation);
  patch_embed_ = register_module(
      "patch_embed", PatchEmbed(PatchEmbedOptions(vit_.img_size, vit_.patch_size, vit_.in_chans, C),
                                root.Child("patch_embed")));
  const int64_t num_tokens =
      static_cast<int64_t>(patch_embed_->grid_size()) * patch_embed_->grid_size() + 1;
  cls_token_ = register_parameter("cls_token", at::zeros({1, 1, C}));
  pos_embed_ = register_parameter("pos_embed", at::zeros({1, num_tokens, C}));
  {
    torch::NoGradGuard no_grad;
    cls_token_.normal_(0.0, 1e-6);  // timm: nn.init.normal_(cls_token, std=1e-6)
  }
  TruncNormal_(pos_embed_, 0.02);
  embed_cat_tap_ = root.Register("embed.cat", TapKind::kActivation);
  pos_embed_tap_ = root.Register("pos_embed", TapKind::kActivation);
  embed_out_tap_ = root.Register("embed.out", TapKind::kActivation);

  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int i = 0; i < vit_.depth; ++i) {
    const std::string path = "blocks." + std::to_string(i);
    ViTBlock block(ViTBlockOptions(C, vit_.num_heads)
                       .mlp_ratio(vit_.mlp_ratio)
                       .qkv_bias(vit_.qkv_bias)
                       .norm_eps(vit_.norm_eps),
                   root.Child(path));
    blocks_->push_back(block);
    block_list_.push_back(block);
    AddBlockPath(path);
  }
  norm_ = register_module(
      "norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({C}).eps(vit_.norm_eps)));
  pool_out_tap_ = root.Register("pool.out", TapKind::kActivation);
  if (vit_.num_classes > 0) {
    head_ = register_module("head", torch::nn::Linear(C, vit_.num_classes));
    InitLinearTimm(head_);
    head_weight_tap_ = root.Register("head.weight", TapKind::kWeight);
    head_out_tap_ = root.Register("head.out", TapKind::kActivation);
  }
}

at::Tensor VisionTransformer::forward(const at::Tensor& input) {
  TORCH_CHECK(input.dim() == 4 && input.size(1) == vit_.in_chans &&
                  input.size(2) == vit_.img_size && input.size(3) == vit_.img_size,
              "VisionTransformer '", config().name, "': expected input [B, ", vit_.in_chans, ", ",
              vit_.img_size, ", ", vit_.img_size, "], got ", input.sizes());
  const TapSet& taps = this->taps();
  at::Tensor x = taps.Apply(input_tap_, input);
  x = patch_embed_->forward(x);  // [B, N, C]
  const int64_t B = x.size(0);
  x = taps.Apply(embed_cat_tap_, at::cat({cls_token_.expand({B, -1, -1}), x}, 1));  // [B, N+1, C]
  x = taps.Apply(embed_out_tap_, x + taps.Apply(pos_embed_tap_, pos_embed_));
  for (ViTBlock& block : block_list_) x = block->forward(x);
  x = norm_->forward(x);
  x = taps.Apply(pool_out_tap_, x.select(1, 0));  // class token, [B, C]
  if (!head_) return x;
  x = TappedLinear(taps, head_weight_tap_, head_, x);
  return taps.Apply(head_out_tap_, x);
}

ModelPtr CreateViT(const ModelConfig& config) {
  return std::make_shared<VisionTransformer>(config);
}

}  // namespace psaq::model
