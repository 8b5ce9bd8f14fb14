#include "launch/train/train_optimizer.h"

#include <array>
#include <stdexcept>
#include <utility>
#include <vector>

#include "model/state_dict.h"

namespace psaq::train {

bool UsesWeightDecay(const std::string& name, const at::Tensor& value) {
  if (value.dim() < 2) return false;
  static const std::array<std::string, 4> kNoDecay = {
      "pos_embed", "cls_token", "absolute_pos_embed", "relative_position_bias_table"};
  const size_t dot = name.rfind('.');
  const std::string last = dot == std::string::npos ? name : name.substr(dot + 1);
  for (const std::string& n : kNoDecay) {
    if (last == n) return false;
  }
  return true;
}

std::unique_ptr<torch::optim::AdamW> MakeAdamW(const torch::nn::Module& module,
                                               const AdamWConfig& config) {
  if (!(config.weight_decay >= 0)) {
    throw std::invalid_argument("AdamW: weight_decay = " + std::to_string(config.weight_decay) +
                                " must be >= 0");
  }
  if (!(config.eps >= 0)) {
    throw std::invalid_argument("AdamW: eps = " + std::to_string(config.eps) + " must be >= 0");
  }
  if (!(config.beta1 >= 0 && config.beta1 < 1 && config.beta2 >= 0 && config.beta2 < 1)) {
    throw std::invalid_argument("AdamW: betas (" + std::to_string(config.beta1) + ", " +
                                std::to_string(config.beta2) + ") must be in [0, 1)");
  }
  // Parameters only: StateDict also lists buffers, which the optimiser must not touch.
  std::vector<at::Tensor> decay, no_decay;
  const auto named = module.named_parameters(/*recurse=*/true);
  for (const auto& [name, tensor] : model::StateDict(module)) {
    if (!named.contains(name) || !tensor.requires_grad()) continue;
    (UsesWeightDecay(name, tensor) ? decay : no_decay).push_back(tensor);
  }
  torch::optim::AdamWOptions base;
  base.betas(std::make_tuple(config.beta1, config.beta2)).eps(config.eps);
  torch::optim::AdamWOptions decayed = base;
  decayed.weight_decay(config.weight_decay);
  torch::optim::AdamWOptions undecayed = base;
  undecayed.weight_decay(0.0);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(decayed));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(undecayed));
  return std::make_unique<torch::optim::AdamW>(std::move(groups), base);
}

void SetLearningRate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

}  // namespace psaq::train
