// The transformer MLP, as timm's layers/mlp.py Mlp: fc1 -> exact (erf) GELU -> fc2.
//
// Parameters (timm names, relative to the module): fc1.weight [hidden, C], fc1.bias [hidden],
// fc2.weight [C, hidden], fc2.bias [C].
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <memory>

#include "model/layer_util.h"

namespace psaq::model {

struct MlpOptions {
  MlpOptions(int in_features, int hidden_features)
      : in_features_(in_features), hidden_features_(hidden_features) {}
  TORCH_ARG(int, in_features);      // C (also the output width)
  TORCH_ARG(int, hidden_features);  // int(C * mlp_ratio), as timm computes it
};

// Taps (in order; prefix = the module's path, e.g. "blocks.3.mlp"):
//   weight "<p>.fc1.weight"; act "<p>.act" (GELU output; fc1's output is not tapped);
//   weight "<p>.fc2.weight"; act "<p>.fc2.out".
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(const MlpOptions& options, const TapScope& scope);

  // x: [..., C] -> [..., C].
  at::Tensor forward(const at::Tensor& x);

 private:
  std::shared_ptr<TapSet> taps_;
  torch::nn::Linear fc1_{nullptr};
  torch::nn::Linear fc2_{nullptr};
  int fc1_weight_tap_ = -1;
  int act_tap_ = -1;
  int fc2_weight_tap_ = -1;
  int fc2_out_tap_ = -1;
};
TORCH_MODULE(Mlp);

}  // namespace psaq::model
