#include "model/mlp.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

namespace psaq::model {

MlpImpl::MlpImpl(const MlpOptions& options, const TapScope& scope) : taps_(scope.taps()) {
  TORCH_CHECK(options.in_features() > 0 && options.hidden_features() > 0,
              "Mlp: in_features and hidden_features must be positive, got ", options.in_features(),
              " and ", options.hidden_features());
  fc1_ =
      register_module("fc1", torch::nn::Linear(options.in_features(), options.hidden_features()));
  fc2_ =
      register_module("fc2", torch::nn::Linear(options.hidden_features(), options.in_features()));
  InitLinearTimm(fc1_);
  InitLinearTimm(fc2_);
  fc1_weight_tap_ = scope.Register("fc1.weight", TapKind::kWeight);
  act_tap_ = scope.Register("act", TapKind::kActivation);
  fc2_weight_tap_ = scope.Register("fc2.weight", TapKind::kWeight);
  fc2_out_tap_ = scope.Register("fc2.out", TapKind::kActivation);
}

at::Tensor MlpImpl::forward(const at::Tensor& x) {
  at::Tensor h = TappedLinear(*taps_, fc1_weight_tap_, fc1_, x);  // [..., hidden]
  h = taps_->Apply(act_tap_, at::gelu(h));                        // exact erf GELU
  h = TappedLinear(*taps_, fc2_weight_tap_, fc2_, h);             // [..., C]
  return taps_->Apply(fc2_out_tap_, h);
}

}  // namespace psaq::model
