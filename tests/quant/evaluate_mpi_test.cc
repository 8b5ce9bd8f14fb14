// Evaluate() over 2 and 3 ranks gives the counts, skip counts and per-image predictions of a
// one-rank evaluation of the same data (computed on every rank over MPI_COMM_SELF), including
// uneven shards and ranks without any batch.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include <string>
#include <vector>

#include "dist/mpi_communicator.h"
#include "model/registry.h"
#include "quant/evaluate.h"
#include "tests/quant/eval_fixtures.h"

namespace psaq::quant {
namespace {

// 16x16 RGB, patch 4, 2 blocks: a real float model, identical on every rank (seeded).
model::ModelConfig TinyConfig() {
  model::ModelConfig c;
  c.name = "eval_tiny_vit";
  c.arch = model::Arch::kViT;
  c.vit.img_size = 16;
  c.vit.patch_size = 4;
  c.vit.in_chans = 3;
  c.vit.num_classes = 10;
  c.vit.embed_dim = 32;
  c.vit.depth = 2;
  c.vit.num_heads = 2;
  c.vit.mlp_ratio = 2.0;
  c.preprocess.crop_pct = 1.0;
  return c;
}

void ExpectSameResult(const EvalResult& world, const EvalResult& single, const std::string& what) {
  EXPECT_EQ(world.images, single.images) << what;
  EXPECT_EQ(world.top1_correct, single.top1_correct) << what;
  EXPECT_EQ(world.top5_correct, single.top5_correct) << what;
  EXPECT_EQ(world.skipped, single.skipped) << what;
  EXPECT_EQ(world.predictions, single.predictions) << what;
}

TEST(EvaluateMpiTest, KnownCountsOnEveryRank) {
  dist::MpiCommunicator world;
  const testing::CodedDataset data({3, 3, 3, 3, 0, 9, 9, 5, 2, 7, 6, 1},
                                   {3, 4, 7, 8, 0, 0, 5, 5, 1, 7, 9, 2});
  for (int64_t batch : {1, 3, 5, 64}) {  // 12, 4, 3 and 1 batches: uneven, and idle ranks
    EvalOptions options;
    options.batch_size = batch;
    const EvalResult r =
        Evaluate(world, &testing::CodedForward, data, testing::CodedConfig(), options);
    EXPECT_EQ(r.images, 12) << "batch " << batch;
    EXPECT_EQ(r.top1_correct, 4) << "batch " << batch;
    EXPECT_EQ(r.top5_correct, 9) << "batch " << batch;
  }
}

TEST(EvaluateMpiTest, RealModelMatchesASingleRankEvaluation) {
  at::manual_seed(7);
  const model::ModelPtr m = model::CreateModel(TinyConfig());
  m->eval();
  auto forward = [&](const at::Tensor& x) { return m->forward(x); };
  const testing::RandomDataset data(37, {5, 22});
  dist::MpiCommunicator world;
  dist::MpiCommunicator self(MPI_COMM_SELF);
  ASSERT_GE(world.size(), 2);

  struct Case {
    int64_t batch, max_images;
  };
  // 10 batches (uneven over 3 ranks), 3 batches, and 2 batches (a rank with none under np 3).
  for (const Case c : {Case{4, 0}, Case{16, 0}, Case{4, 5}}) {
    EvalOptions options;
    options.batch_size = c.batch;
    options.max_images = c.max_images;
    options.on_bad_image = BadImagePolicy::kSkip;
    options.gather_predictions = true;
    const EvalResult all = Evaluate(world, forward, data, m->config(), options);
    const EvalResult one = Evaluate(self, forward, data, m->config(), options);
    const std::string what = "batch " + std::to_string(c.batch) + ", max_images " +
                             std::to_string(c.max_images) + ", " + std::to_string(world.size()) +
                             " ranks";
    ExpectSameResult(all, one, what);
    EXPECT_EQ(all.skipped, c.max_images == 5 ? 0 : 2) << what;
    EXPECT_EQ(all.images, (c.max_images == 5 ? 5 : 37) - all.skipped) << what;
  }
}

TEST(EvaluateMpiTest, PredictionsDoNotDependOnBatchCompositionInPractice) {
  // The grid keeps batches fixed across world sizes; across batch sizes the float results may
  // differ in the last bits, which in practice leaves every prediction unchanged.
  at::manual_seed(7);
  const model::ModelPtr m = model::CreateModel(TinyConfig());
  m->eval();
  auto forward = [&](const at::Tensor& x) { return m->forward(x); };
  const testing::RandomDataset data(37, {});
  dist::MpiCommunicator world;
  EvalOptions small, large;
  small.batch_size = 3;
  large.batch_size = 37;
  small.gather_predictions = large.gather_predictions = true;
  const EvalResult a = Evaluate(world, forward, data, m->config(), small);
  const EvalResult b = Evaluate(world, forward, data, m->config(), large);
  ExpectSameResult(a, b, "batch 3 vs 37");
}

}  // namespace
}  // namespace psaq::quant
