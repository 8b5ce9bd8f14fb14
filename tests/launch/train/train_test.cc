// One-process training (comm == nullptr) of a tiny ViT on real Fashion-MNIST images: the loss
// goes down, runs are reproducible, evaluation counts every image; and the epoch order.
#include "launch/train/train.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "model/data/idx_dataset.h"
#include "model/state_dict.h"
#include "tests/testing/subset_dataset.h"
#include "tests/testing/tiny_models.h"
#include "tests/testing/tensor_near.h"

namespace psaq::train {
namespace {

const model::FashionMnist& TestSplit() {
  static const model::FashionMnist data(model::kDebianFashionMnistDir, "test");
  return data;
}

TrainOptions SmallRun() {
  TrainOptions o;
  o.epochs = 4;
  o.batch_size = 64;
  o.lr.peak_lr = 3e-3;
  o.warmup_epochs = 0;
  o.eval_every_epochs = 0;
  o.log_every_steps = 0;
  o.seed = 5;
  return o;
}

TEST(TrainTest, OneRankTrainingOnAFewHundredImagesLowersTheLoss) {
  const testing::SubsetDataset data(TestSplit(), 1024);
  const auto m = testing::TinyFmnistVit(1);
  const EvalResult before = Evaluate(*m, data, 128, nullptr);
  TrainOptions o = SmallRun();
  o.batch_size = 32;
  // Plain images and hard labels, so that the loss on the training images is what drops.
  o.augment.pad = 0;
  o.augment.flip_prob = 0;
  o.label_smoothing = 0;
  const TrainResult result = Train(*m, data, &data, o, nullptr);

  ASSERT_EQ(result.epochs.size(), 4u);
  EXPECT_EQ(result.steps, 4 * (1024 / 32));
  EXPECT_EQ(result.epochs[0].images, 1024);
  EXPECT_FALSE(result.epochs[0].evaluated);  // eval_every_epochs = 0: only after the last epoch
  ASSERT_TRUE(result.epochs.back().evaluated);
  ASSERT_TRUE(result.evaluated);
  EXPECT_EQ(result.final_test.count, 1024);
  EXPECT_FALSE(m->is_training());
  // Chance is ln(10) = 2.30 and 10%; 128 steps on 1024 images take the tiny model well below.
  EXPECT_GT(before.loss, 2.0);
  EXPECT_LT(result.final_test.loss, 0.75 * before.loss);
  EXPECT_LT(result.epochs.back().train_loss, result.epochs.front().train_loss);
  EXPECT_GT(result.final_test.top1(), 40.0);
  EXPECT_GT(result.epochs.back().lr, 0.0);
  EXPECT_LT(result.epochs.back().lr, 3e-3);
}

TEST(TrainTest, SameSeedAndInitialWeightsGiveIdenticalWeights) {
  const testing::SubsetDataset data(TestSplit(), 256);
  TrainOptions o = SmallRun();
  o.epochs = 2;
  const auto a = testing::TinyFmnistVit(2);
  const auto b = testing::TinyFmnistVit(2);
  Train(*a, data, nullptr, o, nullptr);
  Train(*b, data, nullptr, o, nullptr);
  const auto sa = model::StateDict(*a), sb = model::StateDict(*b);
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) EXPECT_TENSOR_IDENTICAL(sa[i].second, sb[i].second);

  // A different data seed changes the result.
  const auto c = testing::TinyFmnistVit(2);
  o.seed = 6;
  Train(*c, data, nullptr, o, nullptr);
  EXPECT_FALSE(at::equal(model::StateDict(*c).front().second, sa.front().second));
}

TEST(TrainTest, MaxStepsStopsEarlyAndKeepsPartialBatchesWithoutDropLast) {
  const testing::SubsetDataset data(TestSplit(), 100);
  TrainOptions o = SmallRun();
  o.batch_size = 32;
  o.drop_last = false;  // 4 steps per epoch: 32, 32, 32, 4
  o.max_steps = 6;
  const auto m = testing::TinyFmnistVit(3);
  const TrainResult result = Train(*m, data, nullptr, o, nullptr);
  EXPECT_EQ(result.steps, 6);
  ASSERT_EQ(result.epochs.size(), 2u);
  EXPECT_EQ(result.epochs[0].images, 100);
  EXPECT_EQ(result.epochs[1].images, 64);
  EXPECT_FALSE(result.evaluated);
}

TEST(TrainTest, EvaluateCountsEveryImageAndRestoresTrainMode) {
  const testing::SubsetDataset data(TestSplit(), 130);
  const auto m = testing::TinyFmnistVit(4);
  m->train();
  const EvalResult in_one = Evaluate(*m, data, 1000, nullptr);
  const EvalResult in_batches = Evaluate(*m, data, 7, nullptr);
  EXPECT_TRUE(m->is_training());
  EXPECT_EQ(in_one.count, 130);
  EXPECT_EQ(in_one.correct, in_batches.correct);
  EXPECT_NEAR(in_one.loss, in_batches.loss, 1e-6 * in_one.loss);
  // Top-1 by hand on the whole subset.
  m->eval();
  const model::Batch all = model::MakeBatch(
      data,
      [] {
        std::vector<int64_t> v(130);
        for (int64_t i = 0; i < 130; ++i) v[i] = i;
        return v;
      }(),
      m->config());
  at::NoGradGuard no_grad;
  EXPECT_EQ(in_one.correct, m->forward(all.images).argmax(1).eq(all.labels).sum().item<int64_t>());
}

TEST(TrainTest, EpochOrderIsADeterministicPermutationPerEpochAndSeed) {
  const std::vector<int64_t> a = EpochOrder(1000, 7, 0);
  EXPECT_EQ(a, EpochOrder(1000, 7, 0));
  EXPECT_NE(a, EpochOrder(1000, 7, 1));
  EXPECT_NE(a, EpochOrder(1000, 8, 0));
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
  // Fixed values: the order is library-independent (splitmix64 Fisher-Yates), so it must not
  // change between LibTorch versions or platforms.
  const std::vector<int64_t> small = EpochOrder(8, 0, 0);
  EXPECT_EQ(small, EpochOrder(8, 0, 0));
  EXPECT_TRUE(EpochOrder(0, 1, 1).empty());
}

TEST(TrainTest, InvalidOptionsThrowBeforeTraining) {
  const testing::SubsetDataset data(TestSplit(), 50);
  const auto m = testing::TinyFmnistVit(5);
  TrainOptions o = SmallRun();
  o.batch_size = 51;
  EXPECT_THROW(Train(*m, data, nullptr, o, nullptr), std::invalid_argument);
  o = SmallRun();
  o.epochs = 0;
  EXPECT_THROW(Train(*m, data, nullptr, o, nullptr), std::invalid_argument);
  o = SmallRun();
  o.label_smoothing = 1.0;
  EXPECT_THROW(ValidateTrainOptions(o), std::invalid_argument);
  o = SmallRun();
  o.warmup_epochs = 100;  // longer than the run
  EXPECT_THROW(Train(*m, data, nullptr, o, nullptr), std::invalid_argument);
}

}  // namespace
}  // namespace psaq::train
