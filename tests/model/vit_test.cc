// ViT/DeiT model: taps (names, kinds, order, observer semantics), timm parameter names, shapes.
// Numerical parity with timm is in parity_test.cc.
#include "model/vit.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/model/tap_observers.h"
#include "tests/testing/tensor_near.h"
#include "tests/testing/tolerances.h"

namespace psaq::model {
namespace {

using testing::FeatureRecorder;
using testing::RecordingObserver;
using testing::ReplacingObserver;

constexpr TapKind kA = TapKind::kActivation;
constexpr TapKind kW = TapKind::kWeight;
constexpr TapKind kF = TapKind::kFeature;

// 8x8 images, patch 4 -> N = 4 patches + class token, C = 8, 2 heads of 4.
ModelConfig TinyViTConfig(int depth, int num_classes = 5) {
  ModelConfig config;
  config.name = "tiny_vit";
  config.arch = Arch::kViT;
  config.vit.img_size = 8;
  config.vit.patch_size = 4;
  config.vit.in_chans = 3;
  config.vit.num_classes = num_classes;
  config.vit.embed_dim = 8;
  config.vit.depth = depth;
  config.vit.num_heads = 2;
  config.vit.mlp_ratio = 2.0;
  return config;
}

ModelPtr TinyViT(int depth, int num_classes = 5) {
  at::manual_seed(7);
  return CreateViT(TinyViTConfig(depth, num_classes));
}

at::Tensor TinyInput(int64_t batch = 2) {
  at::manual_seed(11);
  return at::randn({batch, 3, 8, 8});
}

TEST(ViTTest, TapNamesKindsAndOrderMatchTheContract) {
  const std::vector<std::pair<std::string, TapKind>> expected = {
      {"input", kA},
      {"patch_embed.proj.weight", kW},
      {"patch_embed.out", kA},
      {"embed.cat", kA},
      {"pos_embed", kA},
      {"embed.out", kA},
      {"blocks.0.norm1.out", kA},
      {"blocks.0.attn.qkv.weight", kW},
      {"blocks.0.attn.qkv.out", kA},
      {"blocks.0.attn.logits", kA},
      {"blocks.0.attn.softmax", kA},
      {"blocks.0.attn.av", kA},
      {"blocks.0.av_mean", kF},
      {"blocks.0.attn.proj.weight", kW},
      {"blocks.0.attn.proj.out", kA},
      {"blocks.0.add1", kA},
      {"blocks.0.norm2.out", kA},
      {"blocks.0.mlp.fc1.weight", kW},
      {"blocks.0.mlp.act", kA},
      {"blocks.0.mlp.fc2.weight", kW},
      {"blocks.0.mlp.fc2.out", kA},
      {"blocks.0.add2", kA},
      {"blocks.0.out", kF},
      {"pool.out", kA},
      {"head.weight", kW},
      {"head.out", kA},
  };
  ModelPtr model = TinyViT(1);
  const auto& taps = model->taps().taps();
  ASSERT_EQ(taps.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(taps[i].name, expected[i].first) << "tap " << i;
    EXPECT_EQ(taps[i].kind, expected[i].second) << "tap " << taps[i].name;
  }
  EXPECT_EQ(model->block_paths(), std::vector<std::string>{"blocks.0"});
}

TEST(ViTTest, ForwardVisitsEveryTapOnceInRegistrationOrderWithDocumentedShapes) {
  ModelPtr model = TinyViT(2);
  RecordingObserver rec;
  ScopedTapObserver scoped(model->taps(), &rec);
  model->forward(TinyInput());
  const auto& taps = model->taps().taps();
  ASSERT_EQ(rec.calls.size(), taps.size());
  for (size_t i = 0; i < taps.size(); ++i) EXPECT_EQ(rec.calls[i].id, static_cast<int>(i));

  using Shape = std::vector<int64_t>;
  const std::vector<std::pair<std::string, Shape>> shapes = {
      {"input", {2, 3, 8, 8}},
      {"patch_embed.out", {2, 4, 8}},
      {"embed.cat", {2, 5, 8}},
      {"pos_embed", {1, 5, 8}},
      {"embed.out", {2, 5, 8}},
      {"blocks.1.attn.qkv.out", {2, 5, 24}},
      {"blocks.1.attn.logits", {2, 2, 5, 5}},
      {"blocks.1.attn.softmax", {2, 2, 5, 5}},
      {"blocks.1.attn.av", {2, 2, 5, 4}},
      {"blocks.1.av_mean", {2, 5, 4}},
      {"blocks.1.mlp.act", {2, 5, 16}},
      {"blocks.1.out", {2, 5, 8}},
      {"pool.out", {2, 8}},
      {"head.weight", {5, 8}},
      {"head.out", {2, 5}},
  };
  for (const auto& [name, shape] : shapes) {
    const RecordingObserver::Call* call = rec.Find(name);
    ASSERT_NE(call, nullptr) << name;
    EXPECT_EQ(call->shape, shape) << name;
  }
  EXPECT_EQ(model->block_paths(), (std::vector<std::string>{"blocks.0", "blocks.1"}));
}

TEST(ViTTest, ParametersHaveTimmNamesAndNoBuffers) {
  ModelPtr model = TinyViT(1);
  std::set<std::string> names;
  for (const auto& item : model->named_parameters()) names.insert(item.key());
  const std::set<std::string> expected = {"cls_token",
                                          "pos_embed",
                                          "patch_embed.proj.weight",
                                          "patch_embed.proj.bias",
                                          "blocks.0.norm1.weight",
                                          "blocks.0.norm1.bias",
                                          "blocks.0.attn.qkv.weight",
                                          "blocks.0.attn.qkv.bias",
                                          "blocks.0.attn.proj.weight",
                                          "blocks.0.attn.proj.bias",
                                          "blocks.0.norm2.weight",
                                          "blocks.0.norm2.bias",
                                          "blocks.0.mlp.fc1.weight",
                                          "blocks.0.mlp.fc1.bias",
                                          "blocks.0.mlp.fc2.weight",
                                          "blocks.0.mlp.fc2.bias",
                                          "norm.weight",
                                          "norm.bias",
                                          "head.weight",
                                          "head.bias"};
  EXPECT_EQ(names, expected);
  EXPECT_TRUE(model->named_buffers().is_empty());
  EXPECT_EQ(model->named_parameters()["pos_embed"].sizes(), (at::IntArrayRef{1, 5, 8}));
}

TEST(ViTTest, ReplacingAdd2WithZerosChangesTheOutput) {
  ModelPtr model = TinyViT(1);
  const at::Tensor x = TinyInput();
  const at::Tensor plain = model->forward(x);
  ReplacingObserver zeros(
      {{"blocks.0.add2", [](const at::Tensor& t) { return at::zeros_like(t); }}});
  at::Tensor replaced;
  {
    ScopedTapObserver scoped(model->taps(), &zeros);
    replaced = model->forward(x);
  }
  // LayerNorm of zeros is its bias (zeros at init), so the logits collapse to the head bias.
  EXPECT_GT((plain - replaced).abs().max().item<double>(), 1e-3);
  EXPECT_TENSOR_IDENTICAL(replaced,
                          model->named_parameters()["head.bias"].expand({2, 5}).contiguous());
  EXPECT_EQ(model->taps().observer(), nullptr);  // the scope restored "no observer"
}

TEST(ViTTest, IdentityObserverLeavesTheOutputBitIdentical) {
  ModelPtr model = TinyViT(2);
  const at::Tensor x = TinyInput();
  const at::Tensor plain = model->forward(x);
  RecordingObserver identity;
  ScopedTapObserver scoped(model->taps(), &identity);
  EXPECT_TENSOR_IDENTICAL(model->forward(x), plain);
}

TEST(ViTTest, FeatureTapsAreComputedOnlyWhenWanted) {
  ModelPtr model = TinyViT(2);
  const at::Tensor x = TinyInput();
  {
    RecordingObserver rec;
    ScopedTapObserver scoped(model->taps(), &rec, TapMask(kA) | TapMask(kW));
    model->forward(x);
    for (const auto& call : rec.calls) EXPECT_NE(call.kind, kF) << call.name;
    EXPECT_EQ(rec.calls.size(), model->taps().taps().size() - 4);
  }
  {
    RecordingObserver rec;
    ScopedTapObserver scoped(model->taps(), &rec, TapMask(kF));
    model->forward(x);
    std::vector<std::string> names;
    for (const auto& call : rec.calls) names.push_back(call.name);
    EXPECT_EQ(names, (std::vector<std::string>{"blocks.0.av_mean", "blocks.0.out",
                                               "blocks.1.av_mean", "blocks.1.out"}));
  }
}

TEST(ViTTest, FeaturesAreTheHeadMeanOfAvAndTheBlockOutput) {
  ModelPtr model = TinyViT(2);
  // Record activations and features in one pass: av, add2 and the two features of block 1.
  class Both : public TapObserver {
   public:
    at::Tensor OnTap(int, const TapInfo& info, const at::Tensor& t) override {
      seen[info.name] = t.detach().clone();
      return t;
    }
    std::map<std::string, at::Tensor> seen;
  } both;
  ScopedTapObserver scoped(model->taps(), &both);
  model->forward(TinyInput());
  EXPECT_TENSOR_NEAR_REL(both.seen.at("blocks.1.av_mean"), both.seen.at("blocks.1.attn.av").mean(1),
                         psaq::testing::kFloat32KernelRel);
  EXPECT_TENSOR_IDENTICAL(both.seen.at("blocks.1.out"), both.seen.at("blocks.1.add2"));
}

TEST(ViTTest, Float64ForwardAgreesWithFloat32AndInputGradientFlows) {
  ModelPtr model = TinyViT(2);
  const at::Tensor x = TinyInput();
  const at::Tensor y32 = model->forward(x).detach();
  model->to(at::kDouble);
  at::Tensor x64 = x.to(at::kDouble).requires_grad_(true);
  at::Tensor y64 = model->forward(x64);
  EXPECT_EQ(y64.scalar_type(), at::kDouble);
  EXPECT_TENSOR_NEAR_REL(y32, y64.detach(), psaq::testing::kFloat32ParityRel);
  y64.square().sum().backward();
  ASSERT_TRUE(x64.grad().defined());
  EXPECT_GT(x64.grad().abs().max().item<double>(), 0.0);
}

TEST(ViTTest, WithoutHeadReturnsPooledClassToken) {
  ModelPtr model = TinyViT(1, /*num_classes=*/0);
  RecordingObserver rec;
  ScopedTapObserver scoped(model->taps(), &rec);
  const at::Tensor y = model->forward(TinyInput());
  EXPECT_EQ(y.sizes(), (at::IntArrayRef{2, 8}));
  EXPECT_EQ(model->taps().Find("head.weight"), -1);
  EXPECT_EQ(rec.calls.back().name, "pool.out");
}

TEST(ViTTest, RejectsAnInputOfTheWrongShape) {
  ModelPtr model = TinyViT(1);
  EXPECT_THROW(model->forward(at::randn({2, 3, 16, 16})), c10::Error);
  EXPECT_THROW(model->forward(at::randn({2, 1, 8, 8})), c10::Error);
}

}  // namespace
}  // namespace psaq::model
