// Data-parallel training under mpirun (2 and 3 ranks): K steps on uneven shards of the same
// global batches end at the parameters of a one-process run of the same global batches (up to
// the order of the gradient sums), identical on every rank; evaluation agrees too.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "dist/mpi_communicator.h"
#include "launch/train/train.h"
#include "model/data/idx_dataset.h"
#include "model/state_dict.h"
#include "tests/testing/subset_dataset.h"
#include "tests/testing/tiny_models.h"
#include "tests/testing/tensor_near.h"
#include "tests/testing/tolerances.h"

namespace psaq::train {
namespace {

// float64 training: the one-process and data-parallel runs differ only in how the per-sample
// gradients are summed (one backward over the batch vs per-shard backwards plus an all-reduce).
// Adam's eps keeps round-off-level gradients (e.g. the key bias, whose true gradient is zero)
// from being amplified, so the parameters after a few steps agree to float64 round-off.
constexpr double kDataParallelRel = ::psaq::testing::kFloat64ParityRel;

const model::FashionMnist& TestSplit() {
  static const model::FashionMnist data(model::kDebianFashionMnistDir, "test");
  return data;
}

TrainOptions FewSteps() {
  TrainOptions o;
  o.epochs = 2;
  o.batch_size = 41;  // uneven over 2 and 3 ranks
  o.max_steps = 9;    // crosses an epoch boundary (7 steps per epoch of 300 images)
  o.lr.peak_lr = 2e-3;
  o.warmup_epochs = 0.5;
  o.log_every_steps = 3;
  o.eval_every_epochs = 0;
  o.seed = 11;
  return o;  // augmentation and label smoothing on (defaults)
}

class TrainMpiTest : public ::testing::Test {
 protected:
  dist::MpiCommunicator comm_;
};

TEST_F(TrainMpiTest, DataParallelStepsMatchTheOneProcessRunAndAgreeAcrossRanks) {
  const testing::SubsetDataset data(TestSplit(), 300);
  // The reference: this rank alone, whole global batches.
  const auto single = testing::TinyFmnistVit(21);
  single->to(at::kDouble);
  const TrainResult reference = Train(*single, data, nullptr, FewSteps(), nullptr);

  // Every rank starts from different weights: Train broadcasts rank 0's.
  const auto parallel = testing::TinyFmnistVit(comm_.rank() == 0 ? 21 : 1000 + comm_.rank());
  parallel->to(at::kDouble);
  const TrainResult result = Train(*parallel, data, nullptr, FewSteps(), &comm_);

  EXPECT_EQ(result.steps, 9);
  ASSERT_EQ(result.epochs.size(), reference.epochs.size());
  for (size_t e = 0; e < result.epochs.size(); ++e) {
    EXPECT_EQ(result.epochs[e].images, reference.epochs[e].images);
    EXPECT_NEAR(result.epochs[e].train_loss, reference.epochs[e].train_loss,
                kDataParallelRel * reference.epochs[e].train_loss);
  }
  const auto got = model::StateDict(*parallel);
  const auto want = model::StateDict(*single);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(::psaq::testing::TensorsNearRel(got[i].second, want[i].second, kDataParallelRel,
                                                got[i].first));
    // Every rank took the same steps: rank 0's values, bit for bit.
    at::Tensor root = got[i].second.detach().clone();
    comm_.Broadcast(root, 0);
    EXPECT_TRUE(
        ::psaq::testing::TensorsIdentical(got[i].second, root, got[i].first + " vs rank 0"));
  }
  // Training moved the weights away from the initial ones.
  EXPECT_FALSE(at::allclose(
      got.front().second, model::StateDict(*testing::TinyFmnistVit(21)).front().second.to(at::kDouble)));
}

TEST_F(TrainMpiTest, ShardedEvaluationCountsEveryImageOnce) {
  const testing::SubsetDataset data(TestSplit(), 257);
  const auto m = testing::TinyFmnistVit(22);
  m->to(at::kDouble);  // no near-ties flipping between batch compositions
  const EvalResult alone = Evaluate(*m, data, 64, nullptr);
  const EvalResult shared = Evaluate(*m, data, 50, &comm_);
  EXPECT_EQ(shared.count, 257);
  EXPECT_EQ(shared.correct, alone.correct);
  EXPECT_NEAR(shared.loss, alone.loss, kDataParallelRel * alone.loss);
}

TEST_F(TrainMpiTest, MoreRanksThanImagesInTheLastBatchStillStepTogether) {
  // 10 images, batch 2 on up to 3 ranks: some ranks have empty shards every step.
  const testing::SubsetDataset data(TestSplit(), 10);
  TrainOptions o = FewSteps();
  o.batch_size = 2;
  o.max_steps = 0;
  o.epochs = 1;
  const auto single = testing::TinyFmnistVit(23);
  single->to(at::kDouble);
  Train(*single, data, nullptr, o, nullptr);
  const auto parallel = testing::TinyFmnistVit(23);
  parallel->to(at::kDouble);
  const TrainResult result = Train(*parallel, data, &data, o, &comm_);
  EXPECT_EQ(result.steps, 5);
  EXPECT_EQ(result.final_test.count, 10);
  const auto got = model::StateDict(*parallel);
  const auto want = model::StateDict(*single);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(::psaq::testing::TensorsNearRel(got[i].second, want[i].second, kDataParallelRel,
                                                got[i].first));
  }
}

}  // namespace
}  // namespace psaq::train
