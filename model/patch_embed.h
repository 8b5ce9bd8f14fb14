// Patch embedding, as timm's layers/patch_embed.py PatchEmbed: a Conv2d with kernel = stride =
// patch_size, then the layout change, then an optional LayerNorm.
//
// Parameters (timm names, relative to the module): proj.weight [C, in_chans, P, P], proj.bias [C],
// and with norm: norm.weight [C], norm.bias [C].
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <memory>

#include "model/layer_util.h"

namespace psaq::model {

struct PatchEmbedOptions {
  PatchEmbedOptions(int img_size, int patch_size, int in_chans, int embed_dim)
      : img_size_(img_size), patch_size_(patch_size), in_chans_(in_chans), embed_dim_(embed_dim) {}
  TORCH_ARG(int, img_size);    // square input side; a multiple of patch_size
  TORCH_ARG(int, patch_size);  // P
  TORCH_ARG(int, in_chans);
  TORCH_ARG(int, embed_dim);  // C
  // true: output [B, N, C] (ViT, N = (img/P)², row-major); false: NHWC [B, H', W', C] (Swin).
  TORCH_ARG(bool, flatten) = true;
  // LayerNorm after the layout change (Swin: true; ViT: false).
  TORCH_ARG(bool, norm) = false;
  TORCH_ARG(double, norm_eps) = 1e-5;
};

// Taps (in order; prefix = the module's path, e.g. "patch_embed"):
//   weight "<p>.proj.weight";
//   without norm: act "<p>.out" (after the layout change);
//   with norm:    act "<p>.proj.out" (after the layout change, before LN), act "<p>.norm.out".
class PatchEmbedImpl : public torch::nn::Module {
 public:
  PatchEmbedImpl(const PatchEmbedOptions& options, const TapScope& scope);

  // x: [B, in_chans, img, img] -> [B, N, C] (flatten) or [B, H', W', C].
  at::Tensor forward(const at::Tensor& x);

  int grid_size() const { return options_.img_size() / options_.patch_size(); }
  const PatchEmbedOptions& options() const { return options_; }

 private:
  PatchEmbedOptions options_;
  std::shared_ptr<TapSet> taps_;
  torch::nn::Conv2d proj_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
  int proj_weight_tap_ = -1;
  int proj_out_tap_ = -1;  // "<p>.out" without norm, "<p>.proj.out" with norm
  int norm_out_tap_ = -1;
};
TORCH_MODULE(PatchEmbed);

}  // namespace psaq::model
