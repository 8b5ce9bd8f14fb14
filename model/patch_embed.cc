#include "model/patch_embed.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

namespace psaq::model {

PatchEmbedImpl::PatchEmbedImpl(const PatchEmbedOptions& options, const TapScope& scope)
    : options_(options), taps_(scope.taps()) {
  TORCH_CHECK(options.patch_size() > 0 && options.img_size() % options.patch_size() == 0,
              "PatchEmbed: img_size ", options.img_size(), " is not a multiple of patch_size ",
              options.patch_size());
  TORCH_CHECK(options.in_chans() > 0 && options.embed_dim() > 0,
              "PatchEmbed: in_chans and embed_dim must be positive");
  const int p = options.patch_size();
  proj_ = register_module(
      "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(options.in_chans(), options.embed_dim(), p)
                                    .stride(p)
                                    .bias(true)));
  if (options.norm()) {
    norm_ = register_module(
        "norm", torch::nn::LayerNorm(
                    torch::nn::LayerNormOptions({options.embed_dim()}).eps(options.norm_eps())));
  }
  // Forward order: conv weight, layout-changed conv output, LN output.
  proj_weight_tap_ = scope.Register("proj.weight", TapKind::kWeight);
  proj_out_tap_ = scope.Register(options.norm() ? "proj.out" : "out", TapKind::kActivation);
  if (options.norm()) norm_out_tap_ = scope.Register("norm.out", TapKind::kActivation);
}

at::Tensor PatchEmbedImpl::forward(const at::Tensor& x) {
  const int p = options_.patch_size();
  at::Tensor w = taps_->Apply(proj_weight_tap_, proj_->weight);
  at::Tensor y = at::conv2d(x, w, proj_->bias, {p, p});  // [B, C, H', W']
  if (options_.flatten()) {
    y = y.flatten(2).transpose(1, 2);  // [B, N, C]
  } else {
    y = y.permute({0, 2, 3, 1});  // [B, H', W', C]
  }
  y = taps_->Apply(proj_out_tap_, y);
  if (options_.norm()) {
    y = taps_->Apply(norm_out_tap_, norm_->forward(y));
  }
  return y;
}

}  // namespace psaq::model
