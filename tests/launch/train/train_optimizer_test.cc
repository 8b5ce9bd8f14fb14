// AdamW parameter groups: timm's weight-decay split on psaq's ViT and Swin, and learning rates.
#include "launch/train/train_optimizer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <string>

#include "model/registry.h"
#include "model/state_dict.h"
#include "tests/testing/tiny_models.h"

namespace psaq::train {
namespace {

TEST(TrainOptimizerTest, DecaysOnlyMatricesAndKernelsNotEmbeddingsOrTables) {
  EXPECT_TRUE(UsesWeightDecay("blocks.0.attn.qkv.weight", at::zeros({6, 2})));
  EXPECT_TRUE(UsesWeightDecay("patch_embed.proj.weight", at::zeros({4, 1, 2, 2})));
  EXPECT_FALSE(UsesWeightDecay("blocks.0.attn.qkv.bias", at::zeros({6})));
  EXPECT_FALSE(UsesWeightDecay("norm.weight", at::zeros({4})));
  EXPECT_FALSE(UsesWeightDecay("pos_embed", at::zeros({1, 5, 4})));
  EXPECT_FALSE(UsesWeightDecay("cls_token", at::zeros({1, 1, 4})));
  EXPECT_FALSE(
      UsesWeightDecay("layers.0.blocks.1.attn.relative_position_bias_table", at::zeros({169, 3})));
}

// Every parameter lands in exactly one group; group 0 (decayed) holds exactly the matrices.
void ExpectGroups(const model::VisionModel& m, double weight_decay) {
  AdamWConfig config;
  config.weight_decay = weight_decay;
  const auto optimizer = MakeAdamW(m, config);
  ASSERT_EQ(optimizer->param_groups().size(), 2u);
  std::set<const void*> decayed, undecayed;
  for (const at::Tensor& t : optimizer->param_groups()[0].params()) decayed.insert(t.data_ptr());
  for (const at::Tensor& t : optimizer->param_groups()[1].params()) undecayed.insert(t.data_ptr());
  const auto& g0 =
      static_cast<const torch::optim::AdamWOptions&>(optimizer->param_groups()[0].options());
  const auto& g1 =
      static_cast<const torch::optim::AdamWOptions&>(optimizer->param_groups()[1].options());
  EXPECT_EQ(g0.weight_decay(), weight_decay);
  EXPECT_EQ(g1.weight_decay(), 0.0);
  size_t count = 0;
  for (const auto& item : m.named_parameters()) {
    const std::string& name = item.key();
    const at::Tensor& t = item.value();
    ++count;
    const bool expect_decay = t.dim() >= 2 && name != "pos_embed" && name != "cls_token" &&
                              name.find("relative_position_bias_table") == std::string::npos;
    EXPECT_EQ(decayed.count(t.data_ptr()), expect_decay ? 1u : 0u) << name;
    EXPECT_EQ(undecayed.count(t.data_ptr()), expect_decay ? 0u : 1u) << name;
  }
  EXPECT_EQ(decayed.size() + undecayed.size(), count);
}

TEST(TrainOptimizerTest, GroupsCoverEveryParameterOfViTAndSwin) {
  ExpectGroups(*testing::TinyFmnistVit(0), 0.05);
  model::ModelConfig swin;
  swin.arch = model::Arch::kSwin;
  swin.swin.img_size = 28;
  swin.swin.patch_size = 2;
  swin.swin.in_chans = 1;
  swin.swin.num_classes = 10;
  swin.swin.embed_dim = 8;
  swin.swin.depths = {2, 1};
  swin.swin.num_heads = {1, 2};
  swin.preprocess.mean = {0.5};
  swin.preprocess.std = {0.5};
  ExpectGroups(*model::CreateModel(swin), 0.1);
}

TEST(TrainOptimizerTest, SetLearningRateReachesEveryGroupAndBadConfigsThrow) {
  const auto m = testing::TinyFmnistVit(0);
  const auto optimizer = MakeAdamW(*m, AdamWConfig());
  SetLearningRate(*optimizer, 3e-4);
  for (const auto& group : optimizer->param_groups()) {
    EXPECT_EQ(static_cast<const torch::optim::AdamWOptions&>(group.options()).lr(), 3e-4);
  }
  AdamWConfig bad;
  bad.weight_decay = -1;
  EXPECT_THROW(MakeAdamW(*m, bad), std::invalid_argument);
  bad = AdamWConfig();
  bad.beta2 = 1.0;
  EXPECT_THROW(MakeAdamW(*m, bad), std::invalid_argument);
}

}  // namespace
}  // namespace psaq::train
