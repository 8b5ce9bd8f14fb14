// The bucket plan, and packing/unpacking against an in-process fake communicator. The
// cross-rank behaviour is in grad_sync_mpi_test.cc.
#include "dist/grad_sync.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <vector>

#include "tests/testing/tensor_near.h"

namespace psaq::dist {
namespace {

// Pretends to be rank 0 of two ranks whose peer contributes zeros: kAvg halves the tensor, kSum
// leaves it, and Broadcast from root 1 writes -1. Records the numel of every collective.
class FakeCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 2; }
  std::string backend() const override { return "fake"; }
  void AllReduce(at::Tensor& t, ReduceOp op) override {
    EXPECT_TRUE(op == ReduceOp::kAvg || op == ReduceOp::kSum);
    EXPECT_TRUE(t.is_contiguous());
    numels.push_back(t.numel());
    if (op == ReduceOp::kAvg) t.mul_(0.5);
  }
  void Broadcast(at::Tensor& t, int root) override {
    EXPECT_TRUE(t.is_contiguous());
    numels.push_back(t.numel());
    if (root != 0) t.fill_(-1);
  }
  at::Tensor AllGather(const at::Tensor& t) override { return at::cat({t, at::zeros_like(t)}); }
  void Barrier() override {}
  double seconds_in_collectives() const override { return 0; }

  std::vector<int64_t> numels;
};

at::Tensor Param(std::vector<int64_t> shape, at::ScalarType dtype = at::kFloat) {
  return at::randn(shape, at::TensorOptions().dtype(dtype)).requires_grad_(true);
}

TEST(PlanBucketsTest, GroupsByFirstAppearingDtypeAndFillsGreedilyInListOrder) {
  // float32: 10, 20, 3 elements (40, 80, 12 bytes); float64: 5, 100 elements (40, 800 bytes).
  const std::vector<at::Tensor> t = {at::zeros({10}), at::zeros({5}, at::kDouble),
                                     at::zeros({4, 5}), at::zeros({3}),
                                     at::zeros({10, 10}, at::kDouble)};
  const std::vector<Bucket> plan = PlanBuckets(t, 100);
  ASSERT_EQ(plan.size(), 4u);
  EXPECT_EQ(plan[0].dtype, at::kFloat);
  EXPECT_EQ(plan[0].indices, (std::vector<size_t>{0}));  // 40 + 80 > 100
  EXPECT_EQ(plan[1].dtype, at::kFloat);
  EXPECT_EQ(plan[1].indices, (std::vector<size_t>{2, 3}));  // 80 + 12 <= 100
  EXPECT_EQ(plan[1].numel, 23);
  EXPECT_EQ(plan[1].bytes(), 92);
  EXPECT_EQ(plan[2].dtype, at::kDouble);
  EXPECT_EQ(plan[2].indices, (std::vector<size_t>{1}));
  EXPECT_EQ(plan[3].indices, (std::vector<size_t>{4}));  // larger than a bucket: alone
  EXPECT_EQ(plan[3].bytes(), 800);
}

TEST(PlanBucketsTest, ABucketMayBeExactlyFull) {
  const std::vector<at::Tensor> t = {at::zeros({5}), at::zeros({5}), at::zeros({1})};
  const std::vector<Bucket> plan = PlanBuckets(t, 40);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].indices, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(plan[1].indices, (std::vector<size_t>{2}));
}

TEST(PlanBucketsTest, DefaultBucketHoldsASmallModelInOneBucketPerDtype) {
  const std::vector<at::Tensor> t = {at::zeros({64, 32}), at::zeros({64}), at::zeros({10, 64})};
  const std::vector<Bucket> plan = PlanBuckets(t, GradSyncOptions().bucket_bytes);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].numel, 64 * 32 + 64 + 640);
  EXPECT_EQ(GradSyncOptions().bucket_bytes, 25 * 1024 * 1024);
}

TEST(PlanBucketsTest, BadArgumentsThrow) {
  EXPECT_THROW(PlanBuckets({at::zeros({2})}, 0), c10::Error);
  EXPECT_THROW(PlanBuckets({at::zeros({2}), at::Tensor()}, 16), c10::Error);
  EXPECT_TRUE(PlanBuckets({}, 16).empty());
}

TEST(AllReduceGradientsTest, PacksUnpacksAndZeroFillsUndefinedGradients) {
  at::manual_seed(3);
  std::vector<at::Tensor> params = {Param({3, 4}), Param({5}), Param({2, 2}, at::kDouble),
                                    Param({6})};
  params[0].mutable_grad() = at::randn({4, 3}).t();  // non-contiguous gradient
  params[1].mutable_grad() = at::randn({5});
  params[2].mutable_grad() = at::randn({2, 2}, at::kDouble);
  // params[3] has no gradient.
  std::vector<at::Tensor> before;
  for (size_t i = 0; i < 3; ++i) before.push_back(params[i].grad().clone());

  FakeCommunicator comm;
  GradSyncOptions options;
  options.bucket_bytes = 64;  // float32: {12, 5} -> 48 bytes + 20 > 64, so [0], [1, 3]
  const GradSyncStats stats = AllReduceGradients(comm, params, options);

  EXPECT_EQ(comm.numels, (std::vector<int64_t>{12, 11, 4}));
  EXPECT_EQ(stats.buckets, 3);
  EXPECT_EQ(stats.bytes, 12 * 4 + 11 * 4 + 4 * 8);
  EXPECT_GE(stats.seconds, stats.comm_seconds);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TENSOR_IDENTICAL(params[i].grad(), before[i] * 0.5);
  }
  ASSERT_TRUE(params[3].grad().defined());
  EXPECT_TENSOR_IDENTICAL(params[3].grad(), at::zeros({6}));
}

TEST(AllReduceGradientsTest, RejectsParametersWithoutGradOrIntegral) {
  FakeCommunicator comm;
  EXPECT_THROW(AllReduceGradients(comm, {at::zeros({2})}), c10::Error);
  EXPECT_THROW(AllReduceGradients(comm, {at::zeros({2}, at::kLong)}), c10::Error);
  EXPECT_TRUE(comm.numels.empty());
}

TEST(AllReduceGradientsTest, SumModeSumsAndOtherOpsAreRefused) {
  at::manual_seed(4);
  std::vector<at::Tensor> params = {Param({3}), Param({2, 2})};
  params[0].mutable_grad() = at::randn({3});
  const at::Tensor before = params[0].grad().clone();
  FakeCommunicator comm;
  GradSyncOptions options;
  options.reduce = ReduceOp::kSum;
  AllReduceGradients(comm, params, options);
  EXPECT_TENSOR_IDENTICAL(params[0].grad(), before);  // the peer's zeros added
  EXPECT_TENSOR_IDENTICAL(params[1].grad(), at::zeros({2, 2}));
  for (ReduceOp op : {ReduceOp::kMin, ReduceOp::kMax}) {
    options.reduce = op;
    EXPECT_THROW(AllReduceGradients(comm, params, options), c10::Error);
  }
  EXPECT_EQ(comm.numels.size(), 1u);  // the refused calls communicated nothing
}

TEST(BroadcastParametersTest, OverwritesLeafParametersWithTheRootsValues) {
  std::vector<at::Tensor> params = {Param({2, 3}), Param({4}), at::zeros({3}, at::kLong)};
  FakeCommunicator comm;
  GradSyncOptions options;
  options.bucket_bytes = 8;
  const GradSyncStats stats = BroadcastParameters(comm, params, /*root=*/1, options);
  EXPECT_EQ(comm.numels, (std::vector<int64_t>{6, 4, 3}));
  EXPECT_EQ(stats.buckets, 3);
  EXPECT_TENSOR_IDENTICAL(params[0], at::full({2, 3}, -1.0f));
  EXPECT_TENSOR_IDENTICAL(params[2], at::full({3}, -1, at::kLong));
  EXPECT_TRUE(params[0].requires_grad());
  EXPECT_THROW(BroadcastParameters(comm, params, /*root=*/2), c10::Error);
}

}  // namespace
}  // namespace psaq::dist
