// Every built-in preset builds with timm's parameter count and classifies a 224² image.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <map>
#include <string>

#include "model/registry.h"

namespace psaq::model {
namespace {

// timm 1.0.29: sum(p.numel() for p in timm.create_model(name).parameters()).
const std::map<std::string, int64_t>& TimmParameterCounts() {
  static const auto* counts = new std::map<std::string, int64_t>{
      {"deit_tiny_patch16_224", 5'717'416},          {"deit_small_patch16_224", 22'050'664},
      {"deit_base_patch16_224", 86'567'656},         {"vit_small_patch16_224", 22'050'664},
      {"vit_base_patch16_224", 86'567'656},          {"swin_tiny_patch4_window7_224", 28'288'354},
      {"swin_small_patch4_window7_224", 49'606'258}, {"swin_base_patch4_window7_224", 87'768'224},
  };
  return *counts;
}

class PresetTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PresetTest, BuildsWithTimmParameterCountAndClassifies224) {
  const std::string& name = GetParam();
  const auto expected = TimmParameterCounts().find(name);
  ASSERT_NE(expected, TimmParameterCounts().end()) << "no reference count for preset " << name;
  at::manual_seed(0);
  ModelPtr model = LoadModel(name);
  EXPECT_EQ(model->config().name, name);
  int64_t count = 0;
  for (const at::Tensor& p : model->parameters()) count += p.numel();
  EXPECT_EQ(count, expected->second);

  model->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor logits = model->forward(at::randn({1, 3, 224, 224}));
  EXPECT_EQ(logits.sizes(), (at::IntArrayRef{1, 1000}));
  EXPECT_TRUE(at::isfinite(logits).all().item<bool>());
}

INSTANTIATE_TEST_SUITE_P(AllPresets, PresetTest, ::testing::ValuesIn(PresetNames()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST(PresetListTest, EveryReferenceCountIsAPreset) {
  for (const auto& [name, count] : TimmParameterCounts()) EXPECT_TRUE(IsPreset(name)) << name;
}

}  // namespace
}  // namespace psaq::model
