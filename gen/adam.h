// Adam (Kingma & Ba, 2015) with explicit, exportable state, for the synthetic images (PSAQ's
// betas (0.5, 0.9)) and for the V2 student's latent weights.
//
// The update is torch.optim.Adam's (and LibTorch's torch::optim::Adam's) exactly, in the same op
// order and with the same in-place ops, so a step matches torch's to the last bit on the same
// device. For every tensor p with gradient g, at its own step count t (incremented first):
//   g   = g + weight_decay * p                      (only when weight_decay != 0; L2, not AdamW)
//   m   = beta1 * m + (1 - beta1) * g
//   v   = beta2 * v + (1 - beta2) * g * g
//   bc1 = 1 - beta1^t,  bc2 = 1 - beta2^t            (host doubles)
//   p  -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
// A tensor whose gradient is undefined is skipped (its step count does not advance), as torch
// does for a parameter without .grad(). No amsgrad, no maximize.
//
// State: per tensor "exp_avg" m and "exp_avg_sq" v (the tensor's dtype/device, created as zeros
// at its first step) and "step" t. ExportState/ImportState turn it into named tensors for
// checkpoints (launch/job/checkpoint.h), so a resumed run continues bit for bit.
//
// Lifetime: holds handles to the tensors it updates (not copies); updates them in place under
// no-grad. Not thread-safe.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace psaq::gen {

struct AdamOptions {
  // Learning rate; callers with a schedule call set_lr() before each step. Default 1e-3 (torch).
  double lr = 1e-3;
  // Decay of the first-moment average. Default 0.9 (torch); PSAQ's images use 0.5.
  double beta1 = 0.9;
  // Decay of the second-moment average. Default 0.999 (torch); PSAQ's images use 0.9.
  double beta2 = 0.999;
  // Added to the bias-corrected sqrt(v). Default 1e-8 (torch and PSAQ).
  double eps = 1e-8;
  // L2 penalty folded into the gradient (torch's Adam, not AdamW). Default 0 (PSAQ).
  double weight_decay = 0;
};

// A detached, contiguous CPU copy of t that never shares memory with it (on the CPU, .cpu()
// would alias): what every state export returns, so a snapshot stays fixed while training goes on.
at::Tensor CpuSnapshot(const at::Tensor& t);

// Throws c10::Error (TORCH_CHECK) naming the field: lr < 0, betas outside [0, 1), eps <= 0,
// weight_decay < 0.
void ValidateAdamOptions(const AdamOptions& options);

class Adam {
 public:
  // `params`: names (unique; used as state keys) and floating-point tensors, updated in place.
  // REQUIRES (TORCH_CHECK): valid options, defined floating tensors, unique names.
  Adam(std::vector<std::pair<std::string, at::Tensor>> params, const AdamOptions& options);

  Adam(const Adam&) = delete;
  Adam& operator=(const Adam&) = delete;
  Adam(Adam&&) = default;
  Adam& operator=(Adam&&) = default;

  // One step with explicit gradients: grads[i] belongs to params[i] (same shape; undefined =
  // skip that tensor). REQUIRES (TORCH_CHECK): grads.size() == number of params.
  void Step(const std::vector<at::Tensor>& grads);
  // One step with each parameter's own .grad().
  void Step();

  double lr() const { return options_.lr; }
  void set_lr(double lr);
  const AdamOptions& options() const { return options_; }

  size_t size() const { return params_.size(); }
  const std::string& name(size_t i) const { return params_[i].first; }
  const at::Tensor& param(size_t i) const { return params_[i].second; }
  // Steps taken by tensor i (0 before its first step).
  int64_t step(size_t i) const { return states_[i].step; }

  // The state as named tensors "<prefix><name>.exp_avg", "<prefix><name>.exp_avg_sq" (absent
  // before the tensor's first step) and "<prefix><name>.step" (int64, 0-dim): CPU snapshots.
  std::vector<std::pair<std::string, at::Tensor>> ExportState(const std::string& prefix) const;
  // Restores what ExportState wrote (moved to each tensor's device and dtype). Throws
  // std::runtime_error naming `source` and the key for a missing step, a missing moment of a
  // tensor whose step is > 0, or a shape mismatch; nothing is changed then.
  void ImportState(const std::map<std::string, at::Tensor>& tensors, const std::string& prefix,
                   const std::string& source);

 private:
  struct State {
    at::Tensor exp_avg;     // m, undefined before the first step
    at::Tensor exp_avg_sq;  // v
    int64_t step = 0;
  };

  std::vector<std::pair<std::string, at::Tensor>> params_;
  std::vector<State> states_;
  AdamOptions options_;
};

}  // namespace psaq::gen
