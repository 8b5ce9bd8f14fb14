// Data-parallel gradient synchronisation under mpirun (2 and 3 ranks): every rank computes the
// gradient of a small two-layer network on its shard of a fixed batch; after AllReduceGradients
// each rank's gradients must equal the average of the per-shard gradients, which every rank can
// also compute alone as the reference.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "dist/grad_sync.h"
#include "dist/mpi_communicator.h"
#include "dist/partition.h"
#include "tests/testing/tensor_near.h"
#include "tests/testing/tolerances.h"

namespace psaq::dist {
namespace {

// All-reduce average vs the locally computed average of the same float32 gradients: the two
// differ only in the order of at most three additions and one division (a few float32 ulps of
// the largest element, ~2e-7 relative).
constexpr double kGradAverageRel = 1e-6;

constexpr int64_t kBatch = 12;  // divisible by 2 and 3: equal shards
constexpr int64_t kIn = 5, kHidden = 7, kOut = 3;

// Parameter order: W1 [H, D], b1 [H], W2 [K, H], b2 [K] (float64, to exercise dtype groups),
// unused [3] (never in the loss), extra [K] (in the loss on shard 0 only).
enum { kW1, kB1, kW2, kB2, kUnused, kExtra, kNumParams };

std::vector<at::Tensor> InitialParameters(uint64_t seed) {
  at::manual_seed(seed);
  std::vector<at::Tensor> p = {
      at::randn({kHidden, kIn}),      at::randn({kHidden}), at::randn({kOut, kHidden}),
      at::randn({kOut}, at::kDouble), at::randn({3}),       at::randn({kOut})};
  for (at::Tensor& t : p) t.requires_grad_(true);
  return p;
}

std::vector<at::Tensor> Fresh(const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> out;
  for (const at::Tensor& t : params) out.push_back(t.detach().clone().requires_grad_(true));
  return out;
}

// Mean squared error of the network on x [B, D] against y [B, K] (float64).
at::Tensor Loss(const std::vector<at::Tensor>& p, const at::Tensor& x, const at::Tensor& y,
                bool use_extra) {
  const at::Tensor h = at::relu(x.matmul(p[kW1].t()) + p[kB1]);    // [B, H]
  at::Tensor out = h.matmul(p[kW2].t()).to(at::kDouble) + p[kB2];  // [B, K]
  if (use_extra) out = out + p[kExtra].to(at::kDouble);
  return (out - y).pow(2).mean();
}

struct Batch {
  at::Tensor x;  // [B, D]
  at::Tensor y;  // [B, K] float64
};

Batch FixedBatch() {
  at::manual_seed(77);
  return {at::randn({kBatch, kIn}), at::randn({kBatch, kOut}, at::kDouble)};
}

// The gradients of shard `shard`'s loss at `initial`, undefined ones as zeros.
std::vector<at::Tensor> ShardGradients(const std::vector<at::Tensor>& initial, const Batch& batch,
                                       int shard, int world) {
  std::vector<at::Tensor> p = Fresh(initial);
  const Range r = ShardRange(kBatch, world, shard);
  Loss(p, batch.x.narrow(0, r.begin, r.size()), batch.y.narrow(0, r.begin, r.size()),
       /*use_extra=*/shard == 0)
      .backward();
  std::vector<at::Tensor> grads;
  for (const at::Tensor& t : p) grads.push_back(t.grad().defined() ? t.grad() : at::zeros_like(t));
  return grads;
}

class GradSyncMpiTest : public ::testing::Test {
 protected:
  MpiCommunicator comm_;
};

TEST_F(GradSyncMpiTest, AveragedGradientsEqualTheMeanOfPerShardGradients) {
  const std::vector<at::Tensor> initial = InitialParameters(1234);
  const Batch batch = FixedBatch();
  const int world = comm_.size();

  // Reference, on every rank alone: the mean over shards of the per-shard gradients.
  std::vector<at::Tensor> reference = ShardGradients(initial, batch, 0, world);
  for (int s = 1; s < world; ++s) {
    const std::vector<at::Tensor> g = ShardGradients(initial, batch, s, world);
    for (size_t i = 0; i < g.size(); ++i) reference[i] = reference[i] + g[i];
  }
  for (at::Tensor& g : reference) g = g / world;

  for (int64_t bucket_bytes : {int64_t{1}, int64_t{128}, GradSyncOptions().bucket_bytes}) {
    SCOPED_TRACE(::testing::Message() << "bucket_bytes " << bucket_bytes);
    std::vector<at::Tensor> params = Fresh(initial);
    const Range mine = ShardRange(kBatch, world, comm_.rank());
    Loss(params, batch.x.narrow(0, mine.begin, mine.size()),
         batch.y.narrow(0, mine.begin, mine.size()), /*use_extra=*/comm_.rank() == 0)
        .backward();
    EXPECT_FALSE(params[kUnused].grad().defined());
    EXPECT_EQ(params[kExtra].grad().defined(), comm_.rank() == 0);

    GradSyncOptions options;
    options.bucket_bytes = bucket_bytes;
    const GradSyncStats stats = AllReduceGradients(comm_, params, options);

    EXPECT_EQ(stats.buckets, static_cast<int64_t>(PlanBuckets(params, bucket_bytes).size()));
    EXPECT_EQ(stats.bytes, (kHidden * kIn + kHidden + kOut * kHidden + 3 + kOut) * 4 + kOut * 8);
    EXPECT_GE(stats.seconds, stats.comm_seconds);
    for (int i = 0; i < kNumParams; ++i) {
      ASSERT_TRUE(params[i].grad().defined()) << "parameter " << i;
      EXPECT_TRUE(::psaq::testing::TensorsNearRel(params[i].grad(), reference[i], kGradAverageRel,
                                                  "grad of parameter " + std::to_string(i)));
    }
    EXPECT_TENSOR_IDENTICAL(params[kUnused].grad(), at::zeros({3}));
  }
  // The tiny-bucket case issued one collective per tensor.
  EXPECT_EQ(PlanBuckets(initial, 1).size(), static_cast<size_t>(kNumParams));
}

// With equal shards and no rank-specific terms, the averaged gradient is the gradient of the
// mean loss over the whole batch (different summation order: float32 round-off).
TEST_F(GradSyncMpiTest, WithEqualShardsTheAverageIsTheFullBatchGradient) {
  const std::vector<at::Tensor> initial = InitialParameters(99);
  const Batch batch = FixedBatch();
  std::vector<at::Tensor> params = Fresh(initial);
  const Range mine = ShardRange(kBatch, comm_.size(), comm_.rank());
  Loss(params, batch.x.narrow(0, mine.begin, mine.size()),
       batch.y.narrow(0, mine.begin, mine.size()), /*use_extra=*/false)
      .backward();
  AllReduceGradients(comm_, params);

  std::vector<at::Tensor> full = Fresh(initial);
  Loss(full, batch.x, batch.y, /*use_extra=*/false).backward();
  for (int i : {kW1, kB1, kW2, kB2}) {
    EXPECT_TRUE(::psaq::testing::TensorsNearRel(params[i].grad(), full[i].grad(),
                                                ::psaq::testing::kFloat32KernelRel,
                                                "grad of parameter " + std::to_string(i)));
  }
}

// kSum with uneven shards: each rank weights its summed loss by 1 / global batch, so the summed
// gradients are the gradient of the mean loss over the whole batch, whatever the shard sizes.
TEST_F(GradSyncMpiTest, SumOfWeightedShardLossesIsTheFullBatchMeanGradient) {
  constexpr int64_t kOdd = 7;  // uneven over 2 and 3 ranks
  const std::vector<at::Tensor> initial = InitialParameters(5);
  const Batch batch = FixedBatch();
  const at::Tensor x = batch.x.narrow(0, 0, kOdd), y = batch.y.narrow(0, 0, kOdd);
  std::vector<at::Tensor> params = Fresh(initial);
  const Range mine = ShardRange(kOdd, comm_.size(), comm_.rank());
  // Loss() is a mean over the shard's rows and outputs; rescale it to (shard sum) / kOdd.
  (Loss(params, x.narrow(0, mine.begin, mine.size()), y.narrow(0, mine.begin, mine.size()),
        /*use_extra=*/false) *
   (static_cast<double>(mine.size()) / kOdd))
      .backward();
  GradSyncOptions options;
  options.reduce = ReduceOp::kSum;
  AllReduceGradients(comm_, params, options);

  std::vector<at::Tensor> full = Fresh(initial);
  Loss(full, x, y, /*use_extra=*/false).backward();
  for (int i : {kW1, kB1, kW2, kB2}) {
    EXPECT_TRUE(::psaq::testing::TensorsNearRel(params[i].grad(), full[i].grad(),
                                                ::psaq::testing::kFloat32KernelRel,
                                                "grad of parameter " + std::to_string(i)));
  }
  EXPECT_TENSOR_IDENTICAL(params[kUnused].grad(), at::zeros({3}));
}

TEST_F(GradSyncMpiTest, BroadcastParametersMakesEveryRankEqualToTheRoot) {
  for (int root : {0, comm_.size() - 1}) {
    for (int64_t bucket_bytes : {int64_t{1}, GradSyncOptions().bucket_bytes}) {
      SCOPED_TRACE(::testing::Message() << "root " << root << " bucket_bytes " << bucket_bytes);
      std::vector<at::Tensor> params = InitialParameters(100 + comm_.rank());  // differ per rank
      const std::vector<at::Tensor> roots = InitialParameters(100 + root);
      if (comm_.rank() != root) {
        ASSERT_FALSE(at::equal(params[kW1], roots[kW1]));
      }
      GradSyncOptions options;
      options.bucket_bytes = bucket_bytes;
      const GradSyncStats stats = BroadcastParameters(comm_, params, root, options);
      EXPECT_EQ(stats.buckets, static_cast<int64_t>(PlanBuckets(params, bucket_bytes).size()));
      for (int i = 0; i < kNumParams; ++i) {
        EXPECT_TENSOR_IDENTICAL(params[i].detach(), roots[i].detach());
        EXPECT_TRUE(params[i].requires_grad());
        EXPECT_TRUE(params[i].is_leaf());
      }
    }
  }
}

}  // namespace
}  // namespace psaq::dist
