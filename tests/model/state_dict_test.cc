#include "model/state_dict.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "model/safetensors.h"
#include "tests/testing/tensor_near.h"

namespace psaq::model {
namespace {

struct Inner : torch::nn::Module {
  Inner() {
    w = register_parameter("w", at::randn({2, 3}));
    running = register_buffer("running", at::randn({3}));
  }
  at::Tensor w, running;
};

// A Linear, a submodule, a bias-free Linear (undefined bias) and a top-level buffer.
struct Net : torch::nn::Module {
  Net() {
    fc = register_module("fc", torch::nn::Linear(4, 3));
    inner = register_module("inner", std::make_shared<Inner>());
    proj = register_module("proj", torch::nn::Linear(torch::nn::LinearOptions(3, 2).bias(false)));
    scale = register_buffer("scale", at::randn({2}));
  }
  torch::nn::Linear fc{nullptr}, proj{nullptr};
  std::shared_ptr<Inner> inner;
  at::Tensor scale;
};

using TensorMap = std::map<std::string, at::Tensor>;

// Independent copies of every state tensor, to compare a module before and after.
TensorMap Snapshot(const torch::nn::Module& m) {
  TensorMap out;
  for (const auto& [name, t] : StateDict(m)) out[name] = t.detach().clone();
  return out;
}

// A full, matching set of new values (different from the module's).
TensorMap FreshWeights(const torch::nn::Module& m, at::ScalarType dtype = at::kFloat) {
  TensorMap out;
  for (const auto& [name, t] : StateDict(m))
    out[name] = at::randn(t.sizes(), at::kDouble).to(dtype);
  return out;
}

std::string LoadError(torch::nn::Module& m, const TensorMap& tensors) {
  try {
    LoadStateDict(m, tensors, "w.safetensors");
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

void ExpectUnchanged(const torch::nn::Module& m, const TensorMap& before) {
  const auto after = StateDict(m);
  ASSERT_EQ(after.size(), before.size());
  for (const auto& [name, t] : after) EXPECT_TENSOR_IDENTICAL(t, before.at(name)) << name;
}

TEST(StateDictTest, ListsParametersThenBuffersThenChildrenWithDottedNames) {
  Net net;
  std::vector<std::string> names;
  for (const auto& [name, t] : StateDict(net)) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"scale", "fc.weight", "fc.bias", "inner.w",
                                             "inner.running", "proj.weight"}));
  // The module's own tensors, not copies.
  EXPECT_TRUE(StateDict(net)[3].second.is_same(net.inner->w));
}

TEST(StateDictTest, LoadCopiesEveryTensorAndKeepsRequiresGrad) {
  at::manual_seed(1);
  Net net;
  const TensorMap weights = FreshWeights(net);
  LoadStateDict(net, weights, "w.safetensors");
  for (const auto& [name, t] : StateDict(net)) EXPECT_TENSOR_IDENTICAL(t, weights.at(name)) << name;
  EXPECT_TRUE(net.fc->weight.requires_grad());
  EXPECT_TRUE(net.inner->w.requires_grad());
  EXPECT_FALSE(net.scale.requires_grad());
  EXPECT_FALSE(net.fc->weight.grad_fn());  // no autograd history from the copy
  // The file's tensors were not aliased.
  EXPECT_FALSE(net.fc->weight.is_same(weights.at("fc.weight")));
}

TEST(StateDictTest, LoadConvertsHalfAndDoubleFilesToTheModulesFloat) {
  for (at::ScalarType dtype : {at::kHalf, at::kDouble}) {
    SCOPED_TRACE(c10::toString(dtype));
    at::manual_seed(2);
    Net net;
    const TensorMap weights = FreshWeights(net, dtype);
    LoadStateDict(net, weights, "w.safetensors");
    for (const auto& [name, t] : StateDict(net)) {
      EXPECT_EQ(t.scalar_type(), at::kFloat) << name;
      EXPECT_TENSOR_IDENTICAL(t, weights.at(name).to(at::kFloat)) << name;
    }
  }
}

TEST(StateDictTest, MissingKeyIsListedAndModuleUnchanged) {
  Net net;
  const TensorMap before = Snapshot(net);
  TensorMap weights = FreshWeights(net);
  weights.erase("inner.running");
  const std::string msg = LoadError(net, weights);
  EXPECT_EQ(msg.rfind("w.safetensors: weights do not match the model (1 problem):", 0), 0u) << msg;
  EXPECT_NE(msg.find("missing keys (1):\n    inner.running"), std::string::npos) << msg;
  ExpectUnchanged(net, before);
}

TEST(StateDictTest, UnexpectedKeyIsListedAndModuleUnchanged) {
  Net net;
  const TensorMap before = Snapshot(net);
  TensorMap weights = FreshWeights(net);
  weights["proj.bias"] = at::zeros({2});  // the module has no bias there
  const std::string msg = LoadError(net, weights);
  EXPECT_NE(msg.find("unexpected keys (1):\n    proj.bias"), std::string::npos) << msg;
  ExpectUnchanged(net, before);
}

TEST(StateDictTest, ShapeMismatchShowsBothShapesAndModuleUnchanged) {
  Net net;
  const TensorMap before = Snapshot(net);
  TensorMap weights = FreshWeights(net);
  weights["fc.weight"] = at::zeros({3, 5});
  const std::string msg = LoadError(net, weights);
  EXPECT_NE(msg.find("shape mismatches (1):\n    fc.weight: file [3, 5] vs model [3, 4]"),
            std::string::npos)
      << msg;
  ExpectUnchanged(net, before);
}

TEST(StateDictTest, TensorWithoutDataIsReportedAndModuleUnchanged) {
  Net net;
  const TensorMap before = Snapshot(net);
  TensorMap weights = FreshWeights(net);
  weights["scale"] = at::empty({2}, at::TensorOptions().device(at::kMeta));
  weights["inner.w"] = at::Tensor();
  const std::string msg = LoadError(net, weights);
  EXPECT_NE(msg.find("scale: file tensor has no data"), std::string::npos) << msg;
  EXPECT_NE(msg.find("inner.w: file tensor has no data"), std::string::npos) << msg;
  ExpectUnchanged(net, before);
}

TEST(StateDictTest, NonFiniteWeightsAreRefusedAndModuleUnchanged) {
  // psaq eval used to score a model with NaN/Inf weights, exit 0.
  Net net;
  const TensorMap before = Snapshot(net);
  TensorMap weights = FreshWeights(net);
  weights["fc.weight"][0][1] = std::nan("");
  weights["fc.weight"][2][3] = INFINITY;
  weights["inner.running"][0] = -INFINITY;
  EXPECT_EQ(LoadError(net, weights),
            "w.safetensors: 2 tensors hold NaN or Inf values, first 'fc.weight' (2 of 12 values)");
  ExpectUnchanged(net, before);
}

TEST(StateDictTest, DoubleThatOverflowsFloatCountsAsNonFinite) {
  Net net;
  const TensorMap before = Snapshot(net);
  TensorMap weights = FreshWeights(net, at::kDouble);
  weights["inner.running"][1] = 1e300;  // finite as F64, +inf as the model's float32
  EXPECT_EQ(LoadError(net, weights),
            "w.safetensors: 1 tensor holds NaN or Inf values, first 'inner.running' (1 of 3 "
            "values)");
  ExpectUnchanged(net, before);
}

TEST(StateDictTest, IntegerDataForFloatParametersIsRefusedAndModuleUnchanged) {
  // Integer data used to be converted silently into weights.
  for (at::ScalarType dtype : {at::kInt, at::kChar, at::kBool}) {
    SCOPED_TRACE(c10::toString(dtype));
    Net net;
    const TensorMap before = Snapshot(net);
    TensorMap weights = FreshWeights(net);
    weights["inner.w"] = at::ones({2, 3}, dtype);
    EXPECT_EQ(LoadError(net, weights), std::string("w.safetensors: tensor 'inner.w' holds ") +
                                           c10::toString(dtype) +
                                           " data where the model has a floating-point "
                                           "parameter (Float)");
    ExpectUnchanged(net, before);
  }
}

TEST(StateDictTest, EveryProblemIsListedInOneError) {
  Net net;
  const TensorMap before = Snapshot(net);
  TensorMap weights = FreshWeights(net);
  weights.erase("fc.bias");
  weights.erase("scale");
  weights["head.weight"] = at::zeros({1});
  weights["inner.running"] = at::zeros({4});
  weights["proj.weight"] = at::zeros({3, 2});
  const std::string msg = LoadError(net, weights);
  EXPECT_NE(msg.find("(5 problems)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing keys (2):\n    scale\n    fc.bias"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected keys (1):\n    head.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("shape mismatches (2):\n    inner.running: file [4] vs model [3]\n"
                     "    proj.weight: file [3, 2] vs model [2, 3]"),
            std::string::npos)
      << msg;
  ExpectUnchanged(net, before);
}

TEST(StateDictTest, SafetensorsRoundTripRestoresAnotherModule) {
  at::manual_seed(3);
  Net a;
  at::manual_seed(4);
  Net b;
  std::string dir = ::testing::TempDir() + "psaq_state_dict_XXXXXX";
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/net.safetensors";
  WriteSafetensors(path, StateDict(a), {{"arch", "test"}});
  LoadStateDict(b, ReadSafetensors(path).ToMap(), path);
  std::filesystem::remove_all(dir);
  const auto sa = StateDict(a);
  const auto sb = StateDict(b);
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) EXPECT_TENSOR_IDENTICAL(sb[i].second, sa[i].second);
}

}  // namespace
}  // namespace psaq::model
