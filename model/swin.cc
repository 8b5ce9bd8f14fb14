#include "model/swin.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <memory>
#include <string>

#include "model/layer_util.h"

namespace psaq::model {

SwinStageImpl::SwinStageImpl(int in_dim, int out_dim, int resolution, int depth, int num_heads,
                             bool downsample, const SwinConfig& config, const TapScope& scope) {
  if (downsample) {
    TORCH_CHECK(out_dim == 2 * in_dim, "SwinStage: downsampling doubles the channels");
    downsample_ = register_module(
        "downsample", PatchMerging(PatchMergingOptions(in_dim).norm_eps(config.norm_eps),
                                   scope.Child("downsample")));
  } else {
    TORCH_CHECK(in_dim == out_dim, "SwinStage: without downsampling in_dim must equal out_dim");
  }
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int j = 0; j < depth; ++j) {
    SwinBlock block(SwinBlockOptions(out_dim, num_heads, resolution, config.window_size)
                        // Every second block shifts its windows by half a window.
                        .shift_size(j % 2 == 1 ? config.window_size / 2 : 0)
                        .mlp_ratio(config.mlp_ratio)
                        .qkv_bias(config.qkv_bias)
                        .norm_eps(config.norm_eps),
                    scope.Child("blocks." + std::to_string(j)));
    blocks_->push_back(block);
    block_list_.push_back(block);
  }
}

at::Tensor SwinStageImpl::forward(const at::Tensor& x) {
  at::Tensor y = downsample_ ? downsample_->forward(x) : x;
  for (SwinBlock& block : block_list_) y = block->forward(y);
  return y;
}

SwinTransformer::SwinTransformer(const ModelConfig& config)
    : VisionModel(config), swin_(config.swin) {
  TORCH_CHECK(config.arch == Arch::kSwin, "SwinTransformer: config '", config.name,
              "' is not a Swin config");
  TORCH_CHECK(!swin_.depths.empty() && swin_.depths.size() == swin_.num_heads.size(),
              "SwinTransformer: depths and num_heads must be non-empty and of equal length");
  TORCH_CHECK(swin_.num_classes >= 0, "SwinTransformer: num_classes must be >= 0");
  const TapScope root(shared_taps(), "");

  input_tap_ = root.Register("input", TapKind::kActivation);
  patch_embed_ =
      register_module("patch_embed", PatchEmbed(PatchEmbedOptions(swin_.img_size, swin_.patch_size,
                                                                  swin_.in_chans, swin_.embed_dim)
                                                    .flatten(false)
                                                    .norm(true)
                                                    .norm_eps(swin_.norm_eps),
                                                root.Child("patch_embed")));

  layers_ = register_module("layers", torch::nn::ModuleList());
  int resolution = patch_embed_->grid_size();
  int dim = swin_.embed_dim;
  for (size_t s = 0; s < swin_.depths.size(); ++s) {
    const bool downsample = s > 0;
    if (downsample) {
      TORCH_CHECK(resolution % 2 == 0, "SwinTransformer: stage ", s, " downsamples an odd map (",
                  resolution, ")");
      resolution /= 2;
    }
    const int out_dim = downsample ? 2 * dim : dim;
    const std::string path = "layers." + std::to_string(s);
    SwinStage stage(dim, out_dim, resolution, swin_.depths[s], swin_.num_heads[s], downsample,
                    swin_, root.Child(path));
    layers_->push_back(stage);
    stage_list_.push_back(stage);
    for (int j = 0; j < swin_.depths[s]; ++j) AddBlockPath(path + ".blocks." + std::to_string(j));
    dim = out_dim;
  }
  norm_ = register_module(
      "norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(swin_.norm_eps)));
  norm_out_tap_ = root.Register("norm.out", TapKind::kActivation);
  pool_out_tap_ = root.Register("pool.out", TapKind::kActivation);
  if (swin_.num_classes > 0) {
    // timm's ClassifierHead: the Linear lives at "head.fc".
    auto head = register_module("head", std::make_shared<torch::nn::Module>("ClassifierHead"));
    head_fc_ = head->register_module("fc", torch::nn::Linear(dim, swin_.num_classes));
    InitLinearTimm(head_fc_);
    head_weight_tap_ = root.Register("head.fc.weight", TapKind::kWeight);
    head_out_tap_ = root.Register("head.out", TapKind::kActivation);
  }
}

at::Tensor SwinTransformer::forward(const at::Tensor& input) {
  TORCH_CHECK(input.dim() == 4 && input.size(1) == swin_.in_chans &&
                  input.size(2) == swin_.img_size && input.size(3) == swin_.img_size,
              "SwinTransformer '", config().name, "': expected input [B, ", swin_.in_chans, ", ",
              swin_.img_size, ", ", swin_.img_size, "], got ", input.sizes());
  const TapSet& taps = this->taps();
  at::Tensor x = taps.Apply(input_tap_, input);
  x = patch_embed_->forward(x);  // [B, H, W, C]
  for (SwinStage& stage : stage_list_) x = stage->forward(x);
  x = taps.Apply(norm_out_tap_, norm_->forward(x));
  x = taps.Apply(pool_out_tap_, x.mean({1, 2}));  // [B, C]
  if (!head_fc_) return x;
  x = TappedLinear(taps, head_weight_tap_, head_fc_, x);
  return taps.Apply(head_out_tap_, x);
}

ModelPtr CreateSwin(const ModelConfig& config) { return std::make_shared<SwinTransformer>(config); }

}  // namespace psaq::model
