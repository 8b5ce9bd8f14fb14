// AdamW for training a model from scratch, with timm's weight-decay split: decoupled weight decay
// on matrices and convolution kernels only, never on biases, LayerNorm parameters, position
// embeddings, class tokens or relative-position bias tables (timm's param_groups_weight_decay
// with the models' no_weight_decay() sets).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <memory>
#include <string>

namespace psaq::train {

struct AdamWConfig {
  // Adam's moment decay rates. Default (0.9, 0.999), PyTorch's and timm's.
  double beta1 = 0.9;
  double beta2 = 0.999;
  // Added to the root of the second moment. Default 1e-8.
  double eps = 1e-8;
  // Decoupled weight decay of the decayed group (UsesWeightDecay). Default 0.05 (DeiT's recipe).
  double weight_decay = 0.05;
};

// True when the parameter called `name` (its state-dict name) with `value` is decayed: it has
// rank >= 2 and its last name component is none of pos_embed, cls_token, absolute_pos_embed,
// relative_position_bias_table.
bool UsesWeightDecay(const std::string& name, const at::Tensor& value);

// An AdamW over every parameter of `module` that requires grad: group 0 holds the decayed ones
// (weight_decay as configured), group 1 the others (weight_decay 0), each in state-dict order.
// Its learning rate is set per step with SetLearningRate. Throws std::invalid_argument for a
// negative weight_decay or eps, or betas outside [0, 1).
std::unique_ptr<torch::optim::AdamW> MakeAdamW(const torch::nn::Module& module,
                                               const AdamWConfig& config);

// Sets the learning rate of every parameter group of `optimizer`.
void SetLearningRate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace psaq::train
