#include "gen/adam.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <set>
#include <stdexcept>

namespace psaq::gen {

at::Tensor CpuSnapshot(const at::Tensor& t) {
  // copy=true: for a CPU tensor .to(kCPU) would hand back the same storage, which Step then
  // changes in place.
  return t.detach()
      .to(at::kCPU, t.scalar_type(), /*non_blocking=*/false, /*copy=*/true)
      .contiguous();
}

void ValidateAdamOptions(const AdamOptions& options) {
  TORCH_CHECK(options.lr >= 0, "AdamOptions.lr must be >= 0, got ", options.lr);
  TORCH_CHECK(options.beta1 >= 0 && options.beta1 < 1, "AdamOptions.beta1 must be in [0, 1), got ",
              options.beta1);
  TORCH_CHECK(options.beta2 >= 0 && options.beta2 < 1, "AdamOptions.beta2 must be in [0, 1), got ",
              options.beta2);
  TORCH_CHECK(options.eps > 0, "AdamOptions.eps must be > 0, got ", options.eps);
  TORCH_CHECK(options.weight_decay >= 0, "AdamOptions.weight_decay must be >= 0, got ",
              options.weight_decay);
}

Adam::Adam(std::vector<std::pair<std::string, at::Tensor>> params, const AdamOptions& options)
    : params_(std::move(params)), states_(params_.size()), options_(options) {
  ValidateAdamOptions(options_);
  std::set<std::string> names;
  for (const auto& [name, p] : params_) {
    TORCH_CHECK(p.defined() && at::isFloatingType(p.scalar_type()), "Adam: tensor '", name,
                "' must be a defined floating-point tensor");
    TORCH_CHECK(names.insert(name).second, "Adam: duplicate tensor name '", name, "'");
  }
}

void Adam::set_lr(double lr) {
  TORCH_CHECK(lr >= 0, "Adam: lr must be >= 0, got ", lr);
  options_.lr = lr;
}

void Adam::Step() {
  std::vector<at::Tensor> grads;
  grads.reserve(params_.size());
  for (const auto& entry : params_) grads.push_back(entry.second.grad());
  Step(grads);
}

void Adam::Step(const std::vector<at::Tensor>& grads) {
  TORCH_CHECK(grads.size() == params_.size(), "Adam::Step: ", grads.size(), " gradients for ",
              params_.size(), " tensors");
  // The updates are in place on leaves that require grad, which autograd allows only when it
  // is off; they are not part of any graph anyway.
  at::NoGradGuard no_grad;
  const double beta1 = options_.beta1;
  const double beta2 = options_.beta2;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!grads[i].defined()) continue;
    at::Tensor p = params_[i].second;
    TORCH_CHECK(grads[i].sizes() == p.sizes(), "Adam::Step: gradient of '", params_[i].first,
                "' has shape ", grads[i].sizes(), ", tensor ", p.sizes());
    State& s = states_[i];
    // Moments are created at a tensor's first gradient (as LibTorch does), so a tensor that
    // never had one exports only its step (0).
    if (!s.exp_avg.defined()) {
      s.exp_avg = at::zeros_like(p, at::MemoryFormat::Preserve);
      s.exp_avg_sq = at::zeros_like(p, at::MemoryFormat::Preserve);
    }
    s.step += 1;
    // LibTorch's Adam::step, op for op (torch/csrc/api/src/optim/adam.cpp).
    const double bias_correction1 = 1 - std::pow(beta1, static_cast<double>(s.step));
    const double bias_correction2 = 1 - std::pow(beta2, static_cast<double>(s.step));
    at::Tensor grad = grads[i];
    if (options_.weight_decay != 0) grad = grad.add(p, options_.weight_decay);
    s.exp_avg.mul_(beta1).add_(grad, 1 - beta1);
    s.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
    at::Tensor denom = (s.exp_avg_sq.sqrt() / std::sqrt(bias_correction2)).add_(options_.eps);
    const double step_size = options_.lr / bias_correction1;
    p.addcdiv_(s.exp_avg, denom, -step_size);
  }
}

std::vector<std::pair<std::string, at::Tensor>> Adam::ExportState(const std::string& prefix) const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string key = prefix + params_[i].first;
    const State& s = states_[i];
    if (s.exp_avg.defined()) {
      out.emplace_back(key + ".exp_avg", CpuSnapshot(s.exp_avg));
      out.emplace_back(key + ".exp_avg_sq", CpuSnapshot(s.exp_avg_sq));
    }
    out.emplace_back(key + ".step", at::scalar_tensor(s.step, at::kLong));
  }
  return out;
}

void Adam::ImportState(const std::map<std::string, at::Tensor>& tensors, const std::string& prefix,
                       const std::string& source) {
  auto fail = [&](const std::string& key, const std::string& why) {
    throw std::runtime_error(source + ": optimizer state '" + key + "': " + why);
  };
  std::vector<State> loaded(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string key = prefix + params_[i].first;
    const at::Tensor& p = params_[i].second;
    auto step = tensors.find(key + ".step");
    if (step == tensors.end()) fail(key + ".step", "missing");
    if (step->second.numel() != 1 || step->second.scalar_type() != at::kLong) {
      fail(key + ".step", "must be one int64");
    }
    loaded[i].step = step->second.item<int64_t>();
    if (loaded[i].step < 0) fail(key + ".step", "negative");
    if (loaded[i].step == 0) continue;
    for (const char* part : {".exp_avg", ".exp_avg_sq"}) {
      auto it = tensors.find(key + part);
      if (it == tensors.end()) fail(key + part, "missing");
      if (it->second.sizes() != p.sizes()) {
        fail(key + part, "shape " + c10::str(it->second.sizes()) + " does not match the tensor's " +
                             c10::str(p.sizes()));
      }
      // clone: .to() returns the caller's tensor itself when device and dtype already match,
      // and Step updates the moments in place.
      at::Tensor value = it->second.to(p.device(), p.scalar_type()).contiguous().clone();
      (std::string(part) == ".exp_avg" ? loaded[i].exp_avg : loaded[i].exp_avg_sq) = value;
    }
  }
  // Replaced only once every entry has passed: a bad checkpoint leaves the optimizer unchanged.
  states_ = std::move(loaded);
}

}  // namespace psaq::gen
