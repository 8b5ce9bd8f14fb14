#include "gen/patch_similarity.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "tests/testing/tensor_near.h"
#include "tests/testing/tolerances.h"

namespace psaq::gen {
namespace {

// float64 results that differ from an explicit-loop evaluation only in summation order.
constexpr double kRoundoffRel = 1e-13;

at::Tensor RandomFeatures(at::IntArrayRef shape, uint64_t seed) {
  at::manual_seed(seed);
  return at::randn(shape, at::kDouble);
}

// cos(F[b, i+1], F[b, j+1]) by explicit loops, in double.
at::Tensor LoopCosine(const at::Tensor& f) {
  const int64_t bp = f.size(0), n = f.size(1) - 1, d = f.size(2);
  at::Tensor out = at::zeros({bp, n, n}, at::kDouble);
  auto fa = f.accessor<double, 3>();
  auto oa = out.accessor<double, 3>();
  for (int64_t b = 0; b < bp; ++b) {
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double dot = 0, ni = 0, nj = 0;
        for (int64_t k = 0; k < d; ++k) {
          dot += fa[b][i + 1][k] * fa[b][j + 1][k];
          ni += fa[b][i + 1][k] * fa[b][i + 1][k];
          nj += fa[b][j + 1][k] * fa[b][j + 1][k];
        }
        oa[b][i][j] =
            dot / (std::max(std::sqrt(ni), kCosineEps) * std::max(std::sqrt(nj), kCosineEps));
      }
    }
  }
  return out;
}

TEST(PatchSimilarityTest, MatchesExplicitCosineLoopsWithoutTokenZero) {
  const at::Tensor f = RandomFeatures({3, 6, 4}, 1);
  const at::Tensor s = PatchCosineSimilarity(f);
  ASSERT_EQ(s.sizes(), (std::vector<int64_t>{3, 5, 5}));
  EXPECT_TENSOR_NEAR_REL(s, LoopCosine(f), kRoundoffRel);
}

TEST(PatchSimilarityTest, HandComputedAngles) {
  // Token 0 is junk; tokens 1..3 are (1,0), (0,2), (1,1): cosines 0 and 1/sqrt(2).
  const at::Tensor f =
      at::tensor({99.0, -7.0, 1.0, 0.0, 0.0, 2.0, 1.0, 1.0}, at::kDouble).view({1, 4, 2});
  const double r = 1 / std::sqrt(2.0);
  const at::Tensor expected =
      at::tensor({1.0, 0.0, r, 0.0, 1.0, r, r, r, 1.0}, at::kDouble).view({1, 3, 3});
  EXPECT_TENSOR_NEAR_REL(PatchCosineSimilarity(f), expected, kRoundoffRel);
}

TEST(PatchSimilarityTest, ZeroTokenGivesZeroSimilarityAndFiniteGradient) {
  // PyTorch clamps each norm at eps: a zero vector has similarity 0 with everything (itself too).
  at::Tensor f = RandomFeatures({1, 4, 3}, 2);
  f[0][2].zero_();
  f.requires_grad_(true);
  const at::Tensor s = PatchCosineSimilarity(f);
  EXPECT_EQ(s[0][1].abs().max().item<double>(), 0.0);
  EXPECT_EQ(s[0].select(1, 1).abs().max().item<double>(), 0.0);
  s.sum().backward();
  EXPECT_TRUE(at::isfinite(f.grad()).all().item<bool>());
}

TEST(PatchSimilarityTest, SwinDropsFirstTokenOfEveryWindowAndGroupsWindowsPerImage) {
  const int64_t batch = 2, windows = 4, tokens = 5, dim = 3;
  at::Tensor f = RandomFeatures({batch * windows, tokens, dim}, 3);
  const at::Tensor grouped = PatchSimilarityPerImage(f, batch);
  const int64_t per_window = (tokens - 1) * (tokens - 1);
  ASSERT_EQ(grouped.sizes(), (std::vector<int64_t>{batch, windows * per_window}));

  // Image b owns windows b*nW .. b*nW + nW - 1, each flattened row-major, in window order.
  const at::Tensor loops = LoopCosine(f);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t w = 0; w < windows; ++w) {
      EXPECT_TENSOR_NEAR_REL(grouped[b].slice(0, w * per_window, (w + 1) * per_window),
                             loops[b * windows + w].reshape({-1}), kRoundoffRel);
    }
  }
  // The first token of every window does not matter.
  at::Tensor g = f.clone();
  g.select(1, 0).normal_();
  EXPECT_TENSOR_IDENTICAL(PatchSimilarityPerImage(g, batch), grouped);
}

TEST(PatchSimilarityTest, Float32StaysFloat32) {
  const at::Tensor f = RandomFeatures({2, 5, 4}, 4);
  const at::Tensor s = PatchCosineSimilarity(f.to(at::kFloat));
  EXPECT_EQ(s.scalar_type(), at::kFloat);
  EXPECT_TENSOR_NEAR_REL(s, LoopCosine(f), testing::kFloat32ParityRel);
}

TEST(PatchSimilarityTest, RejectsBadShapes) {
  EXPECT_THROW(PatchCosineSimilarity(at::zeros({4, 3}, at::kDouble)), c10::Error);
  EXPECT_THROW(PatchCosineSimilarity(at::zeros({2, 1, 3}, at::kDouble)), c10::Error);
  EXPECT_THROW(PatchCosineSimilarity(at::zeros({2, 3, 3}, at::kLong)), c10::Error);
  EXPECT_THROW(PatchSimilarityPerImage(at::zeros({6, 3, 3}, at::kDouble), 4), c10::Error);
  EXPECT_THROW(PatchSimilarityPerImage(at::zeros({6, 3, 3}, at::kDouble), 0), c10::Error);
}

}  // namespace
}  // namespace psaq::gen
