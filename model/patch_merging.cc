#include "model/patch_merging.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <vector>

namespace psaq::model {

PatchMergingImpl::PatchMergingImpl(const PatchMergingOptions& options, const TapScope& scope)
    : options_(options), taps_(scope.taps()) {
  TORCH_CHECK(options.dim() > 0, "PatchMerging: dim must be positive");
  const int C = options.dim();
  norm_ = register_module(
      "norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({4 * C}).eps(options.norm_eps())));
  reduction_ = register_module(
      "reduction", torch::nn::Linear(torch::nn::LinearOptions(4 * C, 2 * C).bias(false)));
  InitLinearTimm(reduction_);
  norm_out_tap_ = scope.Register("norm.out", TapKind::kActivation);
  reduction_weight_tap_ = scope.Register("reduction.weight", TapKind::kWeight);
  reduction_out_tap_ = scope.Register("reduction.out", TapKind::kActivation);
}

at::Tensor PatchMergingImpl::forward(const at::Tensor& x) {
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  TORCH_CHECK(x.dim() == 4 && H % 2 == 0 && W % 2 == 0 && C == options_.dim(),
              "PatchMerging: expected [B, H, W, ", options_.dim(), "] with H, W even, got ",
              x.sizes());
  // Each 2x2 neighbourhood becomes 4C channels. timm's order is w offset major:
  // (h, w) = (0, 0), (1, 0), (0, 1), (1, 1), then C; nn.Unfold's (mmdetection) is C major, then
  // (kh, kw) row-major. The reduction's trained weights depend on it.
  const std::vector<int64_t> order = options_.channel_order() == MergeOrder::kUnfold
                                         ? std::vector<int64_t>{0, 1, 3, 5, 2, 4}
                                         : std::vector<int64_t>{0, 1, 3, 4, 2, 5};
  at::Tensor y =
      x.reshape({B, H / 2, 2, W / 2, 2, C}).permute(order).reshape({B, H / 2, W / 2, 4 * C});
  y = taps_->Apply(norm_out_tap_, norm_->forward(y));
  y = TappedLinear(*taps_, reduction_weight_tap_, reduction_, y);
  return taps_->Apply(reduction_out_tap_, y);
}

}  // namespace psaq::model
