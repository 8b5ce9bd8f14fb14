// Small TapObservers for the model tests.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "model/tap.h"

namespace psaq::testing {

// Records every call (id, name, kind, shape) and returns the tensor unchanged.
class RecordingObserver : public model::TapObserver {
 public:
  struct Call {
    int id;
    std::string name;
    model::TapKind kind;
    std::vector<int64_t> shape;
  };
  at::Tensor OnTap(int id, const model::TapInfo& info, const at::Tensor& x) override {
    calls.push_back(Call{id, info.name, info.kind, x.sizes().vec()});
    return x;
  }
  const Call* Find(const std::string& name) const {
    for (const Call& c : calls) {
      if (c.name == name) return &c;
    }
    return nullptr;
  }
  std::vector<Call> calls;
};

// Keeps a detached copy of every feature tensor by tap name.
class FeatureRecorder : public model::TapObserver {
 public:
  at::Tensor OnTap(int /*id*/, const model::TapInfo& info, const at::Tensor& x) override {
    if (info.kind == model::TapKind::kFeature) features[info.name] = x.detach().clone();
    return x;
  }
  std::map<std::string, at::Tensor> features;
};

// Replaces the tensor at the taps named in `replacements` by fn(x); others pass through.
class ReplacingObserver : public model::TapObserver {
 public:
  using Fn = std::function<at::Tensor(const at::Tensor&)>;
  explicit ReplacingObserver(std::map<std::string, Fn> replacements)
      : replacements_(std::move(replacements)) {}
  at::Tensor OnTap(int /*id*/, const model::TapInfo& info, const at::Tensor& x) override {
    auto it = replacements_.find(info.name);
    return it == replacements_.end() ? x : it->second(x);
  }

 private:
  std::map<std::string, Fn> replacements_;
};

}  // namespace psaq::testing
