#include "gen/adam.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/adam.h>

#include <map>
#include <stdexcept>

#include "tests/testing/tensor_near.h"

namespace psaq::gen {
namespace {

struct Case {
  double beta1, beta2, weight_decay;
};

// The same tensors, stepped by psaq's Adam and by LibTorch's, with the same gradients.
void CompareWithTorch(const Case& c) {
  at::manual_seed(3);
  std::vector<at::Tensor> ours = {at::randn({4, 3}), at::randn({5}), at::randn({2, 2, 3})};
  std::vector<at::Tensor> theirs;
  for (const at::Tensor& t : ours) theirs.push_back(t.clone().set_requires_grad(true));
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (size_t i = 0; i < ours.size(); ++i) named.emplace_back("p" + std::to_string(i), ours[i]);
  AdamOptions options{0.05, c.beta1, c.beta2, 1e-8, c.weight_decay};
  Adam adam(named, options);
  torch::optim::Adam reference(theirs, torch::optim::AdamOptions(0.05)
                                           .betas({c.beta1, c.beta2})
                                           .eps(1e-8)
                                           .weight_decay(c.weight_decay));
  for (int step = 0; step < 6; ++step) {
    std::vector<at::Tensor> grads;
    for (size_t i = 0; i < ours.size(); ++i) {
      // Tensor 1 gets no gradient at step 2: both must skip it (its step count lags).
      at::Tensor g = (step == 2 && i == 1) ? at::Tensor() : at::randn(ours[i].sizes());
      grads.push_back(g);
      theirs[i].mutable_grad() = g.defined() ? g.clone() : at::Tensor();
    }
    adam.Step(grads);
    reference.step();
    for (size_t i = 0; i < ours.size(); ++i) {
      EXPECT_TENSOR_IDENTICAL(ours[i], theirs[i].detach());
    }
  }
  EXPECT_EQ(adam.step(0), 6);
  EXPECT_EQ(adam.step(1), 5);
}

TEST(AdamTest, MatchesTorchAdamBitForBitWithPsaqBetas) { CompareWithTorch({0.5, 0.9, 0.0}); }
TEST(AdamTest, MatchesTorchAdamBitForBitWithDefaultsAndDecay) {
  CompareWithTorch({0.9, 0.999, 0.1});
}

TEST(AdamTest, ExportImportContinuesIdentically) {
  at::manual_seed(5);
  at::Tensor a = at::randn({3, 4});
  at::Tensor b = a.clone();
  Adam first({{"x", a}}, {0.1, 0.5, 0.9, 1e-8, 0});
  for (int i = 0; i < 3; ++i) first.Step({at::randn({3, 4})});
  std::map<std::string, at::Tensor> state;
  for (auto& [k, v] : first.ExportState("img.")) state[k] = v;
  EXPECT_EQ(state.count("img.x.exp_avg"), 1u);
  EXPECT_EQ(state.at("img.x.step").item<int64_t>(), 3);
  b.copy_(a);
  Adam second({{"x", b}}, {0.1, 0.5, 0.9, 1e-8, 0});
  second.ImportState(state, "img.", "test");
  for (int i = 0; i < 2; ++i) {
    at::Tensor g = at::randn({3, 4});
    first.Step({g});
    second.Step({g});
  }
  EXPECT_TENSOR_IDENTICAL(b, a);
}

TEST(AdamTest, ImportRejectsMissingAndMismatchedState) {
  at::Tensor a = at::zeros({2});
  Adam adam({{"x", a}}, {});
  EXPECT_THROW(adam.ImportState({}, "", "ckpt"), std::runtime_error);
  std::map<std::string, at::Tensor> bad = {{"x.step", at::scalar_tensor(int64_t{2}, at::kLong)},
                                           {"x.exp_avg", at::zeros({3})},
                                           {"x.exp_avg_sq", at::zeros({3})}};
  try {
    adam.ImportState(bad, "", "ckpt");
    FAIL() << "expected a shape error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("x.exp_avg"), std::string::npos) << e.what();
  }
  EXPECT_EQ(adam.step(0), 0);
}

TEST(AdamTest, RejectsBadOptions) {
  at::Tensor a = at::zeros({2});
  EXPECT_THROW(Adam({{"x", a}}, AdamOptions{0.1, 1.0, 0.9, 1e-8, 0}), c10::Error);
  EXPECT_THROW(Adam({{"x", a}, {"x", a}}, AdamOptions{}), c10::Error);
}

}  // namespace
}  // namespace psaq::gen
