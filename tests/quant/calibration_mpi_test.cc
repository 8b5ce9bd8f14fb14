// Distributed calibration (run under mpirun -np 2 and -np 3): rank r observes shard r of a fixed
// set of batches; after the one all-reduce, every range and the quantized outputs must be
// BIT-IDENTICAL to a single QuantizedModel, built locally on each rank, that observed all shards.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dist/mpi_communicator.h"
#include "quant/calibration.h"
#include "quant/quantized_model.h"
#include "tests/testing/tiny_models.h"
#include "tests/testing/tensor_near.h"

namespace psaq::quant {
namespace {

// Batch i goes to rank i % size.
std::vector<at::Tensor> Shard(const std::vector<at::Tensor>& batches, int rank, int size) {
  std::vector<at::Tensor> mine;
  for (size_t i = 0; i < batches.size(); ++i) {
    if (static_cast<int>(i % static_cast<size_t>(size)) == rank) mine.push_back(batches[i]);
  }
  return mine;
}

void ExpectDistributedEqualsLocal(const std::string& arch, int num_batches,
                                  const QuantConfig& quant = testing::Bits(4, 8)) {
  dist::MpiCommunicator comm;
  const model::ModelConfig config = testing::TinyConfig(arch);
  // Batches differ in scale so that every shard holds some extreme the others lack.
  std::vector<at::Tensor> batches = testing::Batches(config, num_batches, 3, 77);
  for (size_t i = 0; i < batches.size(); ++i) batches[i].mul_(0.5 + 0.4 * static_cast<double>(i));

  QuantizedModel distributed(testing::TinyModel(arch), quant);
  const std::vector<at::Tensor> shard = Shard(batches, comm.rank(), comm.size());
  const CalibrationResult result = Calibrate(distributed, shard, &comm);
  EXPECT_EQ(result.local_samples, 3 * static_cast<int64_t>(shard.size()));
  EXPECT_EQ(result.global_samples, 3 * num_batches);

  QuantizedModel local(testing::TinyModel(arch), quant);
  Calibrate(local, batches, nullptr);

  ASSERT_EQ(distributed.activation_taps(), local.activation_taps());
  for (int id : local.activation_taps()) {
    EXPECT_EQ(distributed.activation_quantizer(id).range(), local.activation_quantizer(id).range())
        << "rank " << comm.rank() << " tap " << local.tap(id).name;
    EXPECT_TRUE(at::equal(distributed.observer(id).state(), local.observer(id).state()));
  }
  const at::Tensor x = testing::Batches(config, 1, 2, 88)[0];
  at::NoGradGuard no_grad;
  EXPECT_TENSOR_IDENTICAL(distributed.Forward(x), local.Forward(x));
  // The sharded ranges really needed the merge: some tap's local-only range differs.
  if (comm.size() > 1) {
    QuantizedModel alone(testing::TinyModel(arch), quant);
    if (!shard.empty()) {
      Calibrate(alone, shard, nullptr);
      bool any_differs = false;
      for (int id : local.activation_taps()) {
        any_differs |=
            alone.activation_quantizer(id).range() != local.activation_quantizer(id).range();
      }
      EXPECT_TRUE(any_differs) << "rank " << comm.rank();
    }
  }
}

TEST(CalibrationMpiTest, ViTShardedRangesEqualOneObserverOfAllShards) {
  ExpectDistributedEqualsLocal("vit", 6);
}

TEST(CalibrationMpiTest, SwinShardedRangesEqualOneObserverOfAllShards) {
  ExpectDistributedEqualsLocal("swin", 6);
}

TEST(CalibrationMpiTest, RanksWithoutBatchesStillMergeCorrectly) {
  // Two batches over 2 or 3 ranks: with 3 ranks, rank 2 observes nothing.
  ExpectDistributedEqualsLocal("vit", 2);
}

// RepQ's percentile search (quant/percentile_observer.h): two passes, the second's histograms
// merged by a sum; the folded parameters and every range must still be the single observer's.
// The mse search reads the same merged histograms.
QuantConfig RepqSearch(ObserverKind observer) {
  QuantConfig config = testing::Bits(4, 4);
  config.quantizer = QuantizerKind::kRepq;
  config.act_observer = observer;
  return config;
}

TEST(CalibrationMpiTest, PercentileSearchOfShardsEqualsOneObserverOfAll) {
  for (ObserverKind observer : {ObserverKind::kPercentile, ObserverKind::kMse}) {
    SCOPED_TRACE(ObserverKindName(observer));
    ExpectDistributedEqualsLocal("vit", 6, RepqSearch(observer));
    ExpectDistributedEqualsLocal("swin", 6, RepqSearch(observer));
    ExpectDistributedEqualsLocal("vit", 2, RepqSearch(observer));
  }
}

TEST(CalibrationMpiTest, NoSampleOnAnyRankIsAnErrorOnEveryRank) {
  dist::MpiCommunicator comm;
  QuantizedModel q(testing::TinyModel("vit"), QuantConfig{});
  EXPECT_THROW(Calibrate(q, {}, &comm), c10::Error);
  EXPECT_EQ(q.mode(), QuantizedModel::Mode::kFloat);
}

}  // namespace
}  // namespace psaq::quant
