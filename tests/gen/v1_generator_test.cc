#include "gen/v1_generator.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "gen/image_prior.h"
#include "model/data/dataset.h"
#include "model/data/idx_dataset.h"
#include "model/data/preprocess.h"
#include "tests/testing/tiny_models.h"

namespace psaq::gen {
namespace {

// 2 epochs of 12 steps, warm-up 3: a few hundred milliseconds on the tiny models.
V1Options Short() {
  V1Options o;
  o.batch_size = 4;
  o.epochs = 2;
  o.iterations_per_epoch = 12;
  o.warmup_iterations = 3;
  return o;
}

double Mean(const std::vector<double>& v, size_t begin, size_t end) {
  double s = 0;
  for (size_t i = begin; i < end; ++i) s += v[i];
  return s / static_cast<double>(end - begin);
}

// Short() with the paper's settings (ApplyOfficialV1): the loss below has all three terms.
V1Options ShortOfficial() {
  V1Options o = Short();
  ApplyOfficialV1(o);
  return o;
}

TEST(V1GeneratorTest, LossDecreasesAndSamplesStayInThePixelBox) {
  for (model::ModelPtr teacher : {testing::GoldenTeacher(), testing::TinySwinTeacher()}) {
    V1Options o = ShortOfficial();
    o.iterations_per_epoch = 20;
    V1Generator gen(*teacher, o, 7);
    ImageBatch batch = gen.InitBatch(0, 4);
    std::vector<double> losses, ce;
    V1Hooks hooks;
    hooks.on_iteration = [&](const V1Progress& p) {
      losses.push_back(p.loss.total_value);
      ce.push_back(p.loss.cross_entropy);
      EXPECT_NEAR(p.loss.total_value, p.loss.entropy + p.loss.cross_entropy + 0.05 * p.loss.tv,
                  1e-4);
    };
    ASSERT_TRUE(gen.Run(batch, hooks));
    ASSERT_EQ(losses.size(), 40u);
    EXPECT_LT(Mean(losses, 35, 40), Mean(losses, 0, 5)) << teacher->config().name;
    // The golden ViT's logits are large (its weights were scaled up), so its class term falls;
    // the tiny Swin's are near zero at init (CE stays at ln 10), so only its total can.
    // How far it falls in 40 steps depends on the machine's float arithmetic: below 0.75x on the
    // machines this test was written on, 2.09 against 2.40 (0.87x) on Debian 12's LibTorch
    // 1.13.1+dfsg-4 with OpenBLAS 0.3.21 on 2026-12-07, at this change and before it (8cf7f2b).
    // So the test asks for a fall, not for its size.
    if (teacher->config().arch == model::Arch::kViT) {
      EXPECT_LT(Mean(ce, 35, 40), Mean(ce, 0, 5));
    }
    auto [lo, hi] = model::NormalisedPixelRange(teacher->config());
    const at::Tensor x = batch.images.detach();
    const int64_t c = x.size(1);
    EXPECT_TRUE((x >= lo.view({1, c, 1, 1})).all().item<bool>());
    EXPECT_TRUE((x <= hi.view({1, c, 1, 1})).all().item<bool>());
  }
}

TEST(V1GeneratorTest, ClampsToTheBoxAfterAStep) {
  model::ModelPtr teacher = testing::GoldenTeacher();
  V1Generator gen(*teacher, Short(), 7);
  ImageBatch batch = gen.InitBatch(0, 4);
  auto [lo, hi] = model::NormalisedPixelRange(teacher->config());
  // N(0, 1) noise leaves the box [-1.99, 2.44] at about 4% of the pixels...
  EXPECT_LT(batch.images.min().item<float>(), lo.item<float>());
  gen.Step(batch);
  // ...and one step later they sit exactly on its edges.
  EXPECT_EQ(batch.images.min().item<float>(), lo.item<float>());
  EXPECT_EQ(batch.images.max().item<float>(), hi.item<float>());
  V1Options no_clamp = Short();
  no_clamp.clamp_to_pixel_box = false;
  V1Generator free(*teacher, no_clamp, 7);
  ImageBatch unclamped = free.InitBatch(0, 4);
  free.Step(unclamped);
  EXPECT_LT(unclamped.images.min().item<float>(), lo.item<float>());
}

TEST(V1GeneratorTest, ReproducibleAndIndependentOfBatchNeighbours) {
  model::ModelPtr teacher = testing::GoldenTeacher();
  V1Generator gen(*teacher, Short(), 11);
  ImageBatch a = gen.InitBatch(8, 4);
  ImageBatch b = gen.InitBatch(8, 4);
  ImageBatch other = gen.InitBatch(12, 4);
  gen.Run(a);
  gen.Run(other);
  gen.Run(b);
  EXPECT_TENSOR_IDENTICAL(a.images.detach(), b.images.detach());
  EXPECT_FALSE(at::equal(a.images, other.images));
  // A different seed gives different samples; the same index in a different seed too.
  V1Generator gen2(*teacher, Short(), 12);
  ImageBatch c = gen2.InitBatch(8, 4);
  gen2.Run(c);
  EXPECT_FALSE(at::equal(a.images, c.images));
}

TEST(V1GeneratorTest, CheckpointsEveryKAndResumesBitForBit) {
  model::ModelPtr teacher = testing::GoldenTeacher();
  V1Generator gen(*teacher, Short(), 3);
  ImageBatch full = gen.InitBatch(0, 4);
  gen.Run(full);

  ImageBatch part = gen.InitBatch(0, 4);
  std::vector<int64_t> checkpoints;
  std::map<std::string, at::Tensor> saved;
  V1Hooks hooks;
  hooks.checkpoint_every = 5;
  hooks.on_checkpoint = [&](const ImageBatch& b) {
    checkpoints.push_back(b.iteration);
    saved.clear();
    for (auto& [k, v] : ExportImageBatch(b, "b.")) saved[k] = v;
  };
  hooks.should_stop = [&] { return part.iteration == 13; };
  EXPECT_FALSE(gen.Run(part, hooks));
  // Every 5 steps, then the stop at 13 writes a final one.
  EXPECT_EQ(checkpoints, (std::vector<int64_t>{5, 10, 13}));

  ImageBatch resumed = gen.InitBatch(0, 4);
  ImportImageBatch(resumed, saved, "b.", "memory");
  EXPECT_EQ(resumed.iteration, 13);
  checkpoints.clear();
  hooks.should_stop = nullptr;
  EXPECT_TRUE(gen.Run(resumed, hooks));
  EXPECT_EQ(checkpoints, (std::vector<int64_t>{15, 20, 24}));  // and at completion
  EXPECT_TENSOR_IDENTICAL(resumed.images.detach(), full.images.detach());
}

// The one default that departs from the paper (gen/v1_generator.h V1Options::weights): no TV
// term; ApplyOfficialV1 restores the official weight and changes nothing else.
TEST(V1GeneratorTest, DefaultHasNoTvTermAndOfficialRestoresOnlyIt) {
  V1Options o;
  EXPECT_EQ(o.weights.tv, 0.0);
  nlohmann::json before = V1OptionsToJson(o);
  ApplyOfficialV1(o);
  EXPECT_EQ(o.weights.tv, 0.05);
  nlohmann::json after = V1OptionsToJson(o);
  EXPECT_EQ(after["w_tv"], 0.05);
  after["w_tv"] = before["w_tv"];
  EXPECT_EQ(after, before);

  // The default's loss is entropy + CE: the TV term is neither computed nor reported.
  model::ModelPtr teacher = testing::GoldenTeacher();
  V1Generator gen(*teacher, Short(), 7);
  ImageBatch batch = gen.InitBatch(0, 4);
  const V1Progress p = gen.Step(batch);
  EXPECT_EQ(p.loss.tv, 0.0);
  EXPECT_NEAR(p.loss.total_value, p.loss.entropy + p.loss.cross_entropy, 1e-4);

  // The official run is the run with the TV weight set to 0.05 by hand, bit for bit.
  V1Options by_hand = Short();
  by_hand.weights.tv = 0.05;
  V1Generator official(*teacher, ShortOfficial(), 7);
  V1Generator manual(*teacher, by_hand, 7);
  ImageBatch a = official.InitBatch(0, 4);
  ImageBatch b = manual.InitBatch(0, 4);
  official.Run(a);
  manual.Run(b);
  EXPECT_TENSOR_IDENTICAL(a.images.detach(), b.images.detach());
}

// Why the TV term is off by default, part 1: the official target, sized for 224 px ImageNet
// batches and scaled by sqrt(numel), asks for far less variation than real Fashion-MNIST images
// have. 32 training images (normalised as the shipped teachers do): TV about 340-380 (measured
// on three random batches), the target at most 216.5.
TEST(V1GeneratorTest, OfficialTvTargetIsFarBelowRealFashionMnistImages) {
  model::ModelPtr teacher = testing::GoldenTeacher();  // 28 x 28 x 1, Fashion-MNIST statistics
  const model::FashionMnist train(model::kDebianFashionMnistDir, "train");
  std::vector<int64_t> indices;
  for (int64_t i = 0; i < 32; ++i) indices.push_back(i);
  const model::Batch batch = model::MakeBatch(train, indices, teacher->config());
  ASSERT_EQ(batch.images.size(0), 32);
  const double real_tv = TotalVariation(batch.images).item<double>();
  const double target_high = ScaleTvTarget(kTvTargetHigh, batch.images.numel());
  EXPECT_NEAR(target_high, 216.5, 0.1);
  EXPECT_GT(real_tv, 1.5 * target_high) << "real TV " << real_tv;
}

// Part 2: matching that target compresses the samples. From the same noise, the official run
// ends with much less variation (TV) and a narrower range than the default's.
TEST(V1GeneratorTest, OfficialTvTermCompressesTheSamples) {
  model::ModelPtr teacher = testing::GoldenTeacher();
  V1Options defaults = Short();
  V1Generator free(*teacher, defaults, 5);
  V1Generator official(*teacher, ShortOfficial(), 5);
  ImageBatch a = free.InitBatch(0, 32);
  ImageBatch b = official.InitBatch(0, 32);
  free.Run(a);
  official.Run(b);
  const double tv_free = TotalVariation(a.images.detach()).item<double>();
  const double tv_official = TotalVariation(b.images.detach()).item<double>();
  EXPECT_LT(tv_official, 0.8 * tv_free) << tv_official << " vs " << tv_free;
  EXPECT_LT(b.images.std().item<double>(), a.images.std().item<double>());
}

TEST(V1GeneratorTest, JitterLimitsScaleWithImageSizeUnlessOverridden) {
  V1Options o;
  EXPECT_EQ(V1JitterLimit(o, 0, 224), 15);
  EXPECT_EQ(V1JitterLimit(o, 1, 224), 30);
  EXPECT_EQ(V1JitterLimit(o, 0, 28), 2);
  EXPECT_EQ(V1JitterLimit(o, 5, 28), 4);
  o.jitter_limits = {3, 6, 9};
  EXPECT_EQ(V1JitterLimit(o, 1, 28), 6);
  EXPECT_EQ(V1JitterLimit(o, 7, 28), 9);
  EXPECT_DOUBLE_EQ(ArchDefaultImageLr(model::Arch::kSwin), 0.25);
  EXPECT_DOUBLE_EQ(ArchDefaultImageLr(model::Arch::kViT), 0.20);
}

TEST(V1GeneratorTest, RejectsInvalidOptions) {
  model::ModelPtr teacher = testing::GoldenTeacher();
  V1Options o = Short();
  o.warmup_iterations = 13;
  EXPECT_THROW(V1Generator(*teacher, o, 0), c10::Error);
  o = Short();
  o.beta1 = 1.0;
  EXPECT_THROW(V1Generator(*teacher, o, 0), c10::Error);
  EXPECT_EQ(V1OptionsToJson(V1Options{})["iterations_per_epoch"], 500);
}

}  // namespace
}  // namespace psaq::gen
