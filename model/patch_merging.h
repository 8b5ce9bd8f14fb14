// Swin's patch merging (downsampling), as timm 1.0's models/swin_transformer.py PatchMerging:
// each 2 x 2 neighbourhood of an NHWC map is concatenated into 4C channels in timm 1.0's order
// (reshape [B, H/2, 2, W/2, 2, C], permute to [B, H/2, W/2, 2(w), 2(h), C], flatten: channel
// blocks (h0,w0), (h1,w0), (h0,w1), (h1,w1)), then LayerNorm(4C), then a Linear 4C -> 2C without
// bias.
//
// With channel_order kUnfold, the 4C channels are in mmdetection's PatchMerging order instead
// (mmcv/mmdet's nn.Unfold(kernel 2, stride 2): channel c·4 + kh·2 + kw, channel-major), so an
// mmdetection Swin checkpoint's norm/reduction weights load without permutation (docs/detection.md
// gives the mapping between the two orders).
//
// Parameters (timm names, relative to the module): norm.{weight,bias} [4C],
// reduction.weight [2C, 4C].
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <memory>

#include "model/layer_util.h"

namespace psaq::model {

// The order of the 4C merged channels (see above).
enum class MergeOrder { kTimm, kUnfold };

struct PatchMergingOptions {
  explicit PatchMergingOptions(int dim) : dim_(dim) {}
  TORCH_ARG(int, dim);                 // C of the input; the output has 2C
  TORCH_ARG(MergeOrder, channel_order) = MergeOrder::kTimm;  // kUnfold: mmdetection's order
  TORCH_ARG(double, norm_eps) = 1e-5;  // nn.LayerNorm default, as timm's Swin
};

// Taps (in order; prefix p = the module's path, e.g. "layers.1.downsample"):
//   act "<p>.norm.out" [B, H/2, W/2, 4C]; weight "<p>.reduction.weight";
//   act "<p>.reduction.out" [B, H/2, W/2, 2C].
class PatchMergingImpl : public torch::nn::Module {
 public:
  PatchMergingImpl(const PatchMergingOptions& options, const TapScope& scope);

  // x: [B, H, W, C] with H, W even -> [B, H/2, W/2, 2C].
  at::Tensor forward(const at::Tensor& x);

 private:
  PatchMergingOptions options_;
  std::shared_ptr<TapSet> taps_;
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear reduction_{nullptr};
  int norm_out_tap_ = -1;
  int reduction_weight_tap_ = -1;
  int reduction_out_tap_ = -1;
};
TORCH_MODULE(PatchMerging);

}  // namespace psaq::model
