// The fused patch-similarity entropy (gen/fused_entropy.h) against the reference
// (gen/patch_similarity_entropy.h PatchSimilarityEntropyPerImage with kReference, i.e.
// gen/kde_entropy.h): per-image values and input gradients on ViT- and Swin-layout features, odd
// sizes, every CPU task split, both dtypes.
#include "gen/fused_entropy.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gen/kde_entropy.h"
#include "gen/patch_similarity.h"
#include "gen/patch_similarity_entropy.h"
#include "tests/testing/tensor_near.h"
#include "tests/testing/tolerances.h"

namespace psaq::gen {
namespace {

struct EntropyAndGrad {
  at::Tensor entropy;  // [B]
  at::Tensor grad;     // [B', N, d], d(sum_b w_b H_b)/dF
};

// H [B] and the gradient of sum_b w_b * H_b (w fixed random weights, so every image's gradient
// is checked with its own scale) w.r.t. F.
EntropyAndGrad EntropyWithGrad(const at::Tensor& features, int64_t batch, const KdeOptions& options,
                               bool fused) {
  at::Tensor f = features.detach().clone().requires_grad_(true);
  const at::Tensor h = fused ? FusedPatchSimilarityEntropyPerImage(f, batch, options)
                             : PatchSimilarityEntropyPerImage(f, batch, options);
  const at::Tensor w = at::linspace(1.0, 2.0, batch, h.options()).requires_grad_(false);
  (h * w).sum().backward();
  return {h.detach(), f.grad()};
}

// float64: the fused result within kFloat64ParityRel of the reference, values and gradients.
// float32: the similarities are rounded differently (in-order dot products vs a BLAS matmul) and
// the KDE with h = 0.01 amplifies that to ~1e-5..1e-4 in the gradient, for the reference itself
// too. So both float32 results are compared with the float64 reference on the same
// float32-rounded input, and the fused one may be at most kFloat32ReferenceErrorFactor times as
// far from it as the float32 reference (or kFloat32KernelRel, when that is larger).
void ExpectFusedMatchesReference(const at::Tensor& features, int64_t batch,
                                 const KdeOptions& options, const std::string& what) {
  const EntropyAndGrad got = EntropyWithGrad(features, batch, options, /*fused=*/true);
  EXPECT_EQ(got.grad.scalar_type(), features.scalar_type()) << what;
  if (features.scalar_type() == at::kDouble) {
    const EntropyAndGrad ref = EntropyWithGrad(features, batch, options, /*fused=*/false);
    EXPECT_TENSOR_NEAR_REL(got.entropy, ref.entropy, testing::kFloat64ParityRel) << what;
    EXPECT_TENSOR_NEAR_REL(got.grad, ref.grad, testing::kFloat64ParityRel) << what;
    ASSERT_GT(ref.grad.abs().max().item<double>(), 0.0) << what << ": a test that cannot fail";
    return;
  }
  const EntropyAndGrad ref32 = EntropyWithGrad(features, batch, options, /*fused=*/false);
  const EntropyAndGrad ref64 =
      EntropyWithGrad(features.to(at::kDouble), batch, options, /*fused=*/false);
  EXPECT_EQ(got.entropy.scalar_type(), ref32.entropy.scalar_type()) << what;
  auto tolerance = [](const at::Tensor& ref32_value, const at::Tensor& ref64_value) {
    return std::max(testing::kFloat32KernelRel,
                    testing::kFloat32ReferenceErrorFactor *
                        testing::CompareTensors(ref32_value, ref64_value).ratio);
  };
  EXPECT_TENSOR_NEAR_REL(got.entropy, ref64.entropy, tolerance(ref32.entropy, ref64.entropy))
      << what;
  EXPECT_TENSOR_NEAR_REL(got.grad, ref64.grad, tolerance(ref32.grad, ref64.grad)) << what;
  ASSERT_GT(ref64.grad.abs().max().item<double>(), 0.0) << what << ": a test that cannot fail";
}

struct Shape {
  int64_t windows, tokens, dim, batch;
};

std::string Name(const Shape& s, at::ScalarType t) {
  return "F[" + std::to_string(s.windows) + "," + std::to_string(s.tokens) + "," +
         std::to_string(s.dim) + "] B=" + std::to_string(s.batch) + " " + c10::toString(t);
}

// ViT (B' = B), Swin (B' = B * nW, N = 49), odd sizes, B = 1, d = 2. (d = 1 and N = 2 have
// no gradient to compare: see the degenerate cases below.)
const std::vector<Shape> kShapes = {
    {4, 17, 8, 4}, {2, 65, 16, 2}, {8, 49, 16, 2}, {12, 49, 4, 3},  {3, 6, 5, 3},
    {5, 11, 3, 1}, {1, 30, 7, 1},  {2, 10, 2, 2},  {1, 197, 64, 1}, {4, 3, 3, 2},
};

TEST(FusedEntropyTest, MatchesReferenceValuesAndGradientsOnManyShapes) {
  uint64_t seed = 100;
  for (const Shape& s : kShapes) {
    for (at::ScalarType t : {at::kDouble, at::kFloat}) {
      at::manual_seed(++seed);
      const at::Tensor f = at::randn({s.windows, s.tokens, s.dim}, at::kDouble).to(t);
      ExpectFusedMatchesReference(f, s.batch, KdeOptions(), Name(s, t));
    }
  }
}

TEST(FusedEntropyTest, MatchesReferenceOnConcentratedSimilarities) {
  // Features close to one direction: similarities near 1, a narrow grid, many kernel terms
  // alive (the regime of trained models' late blocks).
  at::manual_seed(3);
  for (at::ScalarType t : {at::kDouble, at::kFloat}) {
    const at::Tensor base = at::randn({1, 1, 24}, at::kDouble);
    const at::Tensor f = (base + 0.05 * at::randn({8, 49, 24}, at::kDouble)).to(t);
    ExpectFusedMatchesReference(f, 2, KdeOptions(),
                                std::string("concentrated ") + c10::toString(t));
  }
}

TEST(FusedEntropyTest, MatchesReferenceForOtherBandwidthsAndGrids) {
  at::manual_seed(4);
  const at::Tensor f = at::randn({6, 13, 5}, at::kDouble);
  for (double bandwidth : {0.003, 0.05, 0.3}) {
    for (int64_t grid : {2, 7, 16, 33}) {
      KdeOptions o;
      o.bandwidth = bandwidth;
      o.grid_points = grid;
      o.density_floor = 1e-3;
      ExpectFusedMatchesReference(f, 3, o,
                                  "h=" + std::to_string(bandwidth) + " G=" + std::to_string(grid));
    }
  }
}

TEST(FusedEntropyTest, EveryTaskSplitGivesTheSameResult) {
  // N' = 48: rows per task 1, 5 (does not divide), 16 (divides), 48 (whole windows, the
  // triangle backward), more than a window, automatic.
  at::manual_seed(5);
  const at::Tensor f = at::randn({8, 49, 6}, at::kDouble);
  const EntropyAndGrad ref = EntropyWithGrad(f, 2, KdeOptions(), /*fused=*/false);
  for (int64_t chunk : {0, 1, 48 * 5, 48 * 16, 48 * 48, 1000000}) {
    KdeOptions o;
    o.chunk_size = chunk;
    const EntropyAndGrad got = EntropyWithGrad(f, 2, o, /*fused=*/true);
    EXPECT_TENSOR_NEAR_REL(got.entropy, ref.entropy, testing::kFloat64ParityRel) << chunk;
    EXPECT_TENSOR_NEAR_REL(got.grad, ref.grad, testing::kFloat64ParityRel) << chunk;
  }
}

TEST(FusedEntropyTest, ResultsDoNotDependOnTheThreadCount) {
  at::manual_seed(6);
  const at::Tensor f = at::randn({4, 33, 8}, at::kDouble);
  KdeOptions o;
  o.chunk_size = 32 * 3;  // 3 rows per task: 11 tasks per window
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const EntropyAndGrad one = EntropyWithGrad(f, 2, o, /*fused=*/true);
  at::set_num_threads(3);
  const EntropyAndGrad three = EntropyWithGrad(f, 2, o, /*fused=*/true);
  at::set_num_threads(threads);
  EXPECT_TENSOR_IDENTICAL(three.entropy, one.entropy);
  EXPECT_TENSOR_IDENTICAL(three.grad, one.grad);
}

TEST(FusedEntropyTest, AllEqualFeaturesGiveZeroEntropyAndGradientLikeTheReference) {
  // Every token the same vector: s_min == s_max, a grid of 10 equal points, dx = 0.
  for (at::ScalarType t : {at::kDouble, at::kFloat}) {
    const at::Tensor f = at::full({4, 9, 3}, 0.7, t);
    const EntropyAndGrad ref = EntropyWithGrad(f, 2, KdeOptions(), /*fused=*/false);
    const EntropyAndGrad got = EntropyWithGrad(f, 2, KdeOptions(), /*fused=*/true);
    EXPECT_TENSOR_IDENTICAL(ref.entropy, at::zeros({2}, t));
    EXPECT_TENSOR_IDENTICAL(got.entropy, ref.entropy);
    EXPECT_TENSOR_IDENTICAL(got.grad, ref.grad);
    EXPECT_EQ(got.grad.abs().max().item<double>(), 0.0);
  }
}

// max |a - e| <= tol, for results that are 0 up to rounding.
void ExpectNearAbs(const at::Tensor& a, const at::Tensor& e, double tol, const std::string& what) {
  EXPECT_LE(testing::CompareTensors(a, e).max_abs_error, tol) << what;
}

TEST(FusedEntropyTest, DegenerateLayoutsMatchTheReferenceToRounding) {
  // Roundoff-level results only: absolute comparison.
  constexpr double kRoundoffAbs = 1e-12;
  at::manual_seed(11);
  // One token per window (N = 2): M = 1, s = u.u = 1 up to rounding, a grid a few ulps wide.
  const at::Tensor single = at::randn({6, 2, 3}, at::kDouble);
  // d = 1: s = +-1 exactly and u = f / |f| has zero derivative, so the gradient is 0.
  const at::Tensor scalar = at::randn({2, 10, 1}, at::kDouble);
  for (const at::Tensor& f : {single, scalar}) {
    for (at::ScalarType t : {at::kDouble, at::kFloat}) {
      const EntropyAndGrad ref = EntropyWithGrad(f.to(t), 2, KdeOptions(), /*fused=*/false);
      const EntropyAndGrad got = EntropyWithGrad(f.to(t), 2, KdeOptions(), /*fused=*/true);
      const std::string what = "F" + c10::str(f.sizes()) + " " + c10::toString(t);
      ExpectNearAbs(got.entropy, ref.entropy, t == at::kDouble ? kRoundoffAbs : 1e-5, what);
      ExpectNearAbs(got.grad, ref.grad, kRoundoffAbs, what);
      ExpectNearAbs(got.grad, at::zeros_like(got.grad), kRoundoffAbs, what);
    }
  }
  // d = 1 entropies are not degenerate (two similarity values, -1 and 1): compare relatively.
  EXPECT_TENSOR_NEAR_REL(FusedPatchSimilarityEntropyPerImage(scalar, 2),
                         PatchSimilarityEntropyPerImage(scalar, 2), testing::kFloat64ParityRel);
  EXPECT_GT(PatchSimilarityEntropyPerImage(scalar, 2).abs().min().item<double>(), 0.0);
}

TEST(FusedEntropyTest, ZeroTokensFollowTheClampedNormLikeTheReference) {
  // A zero row has norm 0 < eps: its unit row is 0 and its similarities 0.
  at::manual_seed(7);
  at::Tensor f = at::randn({2, 8, 4}, at::kDouble);
  f[0][3].zero_();
  f[1][5].zero_();
  ExpectFusedMatchesReference(f, 2, KdeOptions(), "zero rows");
}

TEST(FusedEntropyTest, HalfInputIsComputedInFloat32) {
  at::manual_seed(8);
  const at::Tensor f = at::randn({4, 10, 8}, at::kDouble).to(at::kHalf);
  const at::Tensor ref = PatchSimilarityEntropyPerImage(f, 2);
  const at::Tensor got = FusedPatchSimilarityEntropyPerImage(f, 2);
  EXPECT_EQ(got.scalar_type(), at::kFloat);
  EXPECT_TENSOR_NEAR_REL(got, ref, testing::kFloat32KernelRel);
}

TEST(FusedEntropyTest, RangeAndDensityMatchTheirReferenceBuildingBlocks) {
  at::manual_seed(9);
  const at::Tensor f = at::randn({6, 12, 5}, at::kDouble);
  const at::Tensor s = PatchSimilarityPerImage(f, 3);  // [B, M]
  const at::Tensor unit = PatchUnitFeatures(f);
  const auto range = FusedSimilarityRange(unit);
  EXPECT_NEAR(range.first, s.min().item<double>(), 1e-15);
  EXPECT_NEAR(range.second, s.max().item<double>(), 1e-15);
  const at::Tensor grid = KdeGrid(s);
  at::Tensor u = unit.detach().clone().requires_grad_(true);
  at::Tensor s_ref = at::matmul(u, u.transpose(1, 2)).reshape({3, -1});
  const at::Tensor w = at::rand({3, 10}, at::kDouble);
  const at::Tensor p_ref = KdeDensity(s_ref, grid);
  (p_ref * w).sum().backward();
  const at::Tensor grad_ref = u.grad().clone();
  u.mutable_grad().reset();
  const at::Tensor p = FusedKdeDensity(u, grid, 3);
  (p * w).sum().backward();
  EXPECT_TENSOR_NEAR_REL(p, p_ref, testing::kFloat64ParityRel);
  EXPECT_TENSOR_NEAR_REL(u.grad(), grad_ref, testing::kFloat64ParityRel);
}

TEST(FusedEntropyTest, OptionSwitchesTheReferenceEntryPointsToTheFusedCode) {
  at::manual_seed(10);
  const std::vector<at::Tensor> blocks = {at::randn({2, 9, 4}, at::kDouble),
                                          at::randn({8, 5, 3}, at::kDouble)};
  KdeOptions fused;
  fused.implementation = KdeImplementation::kFused;
  EXPECT_TENSOR_IDENTICAL(PatchSimilarityEntropyPerImage(blocks[0], 2, fused),
                          FusedPatchSimilarityEntropyPerImage(blocks[0], 2));
  EXPECT_NEAR(
      PatchSimilarityEntropyLoss(blocks, 2, fused).item<double>(),
      PatchSimilarityEntropyLoss(blocks, 2).item<double>(),
      testing::kFloat64ParityRel * PatchSimilarityEntropyLoss(blocks, 2).abs().item<double>());
}

TEST(FusedEntropyTest, RejectsBadInputsLikeTheReference) {
  const at::Tensor f = at::randn({4, 5, 3}, at::kDouble);
  EXPECT_THROW(FusedPatchSimilarityEntropyPerImage(f, 3), c10::Error);  // 4 % 3 != 0
  EXPECT_THROW(FusedPatchSimilarityEntropyPerImage(f, 0), c10::Error);
  EXPECT_THROW(FusedPatchSimilarityEntropyPerImage(f.view({4, 15}), 2), c10::Error);
  EXPECT_THROW(FusedPatchSimilarityEntropyPerImage(f.slice(1, 0, 1), 2), c10::Error);  // N = 1
  KdeOptions bad;
  bad.bandwidth = -1;
  EXPECT_THROW(FusedPatchSimilarityEntropyPerImage(f, 2, bad), c10::Error);
  at::Tensor nan = f.clone();
  nan[1][2][0] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(PatchSimilarityEntropyPerImage(nan, 2), c10::Error);
  EXPECT_THROW(FusedPatchSimilarityEntropyPerImage(nan, 2), c10::Error);
  const at::Tensor unit = PatchUnitFeatures(f);
  EXPECT_THROW(FusedKdeDensity(unit, at::linspace(0, 1, 10, at::kFloat), 2), c10::Error);
  EXPECT_THROW(FusedKdeDensity(unit.to(at::kInt), at::linspace(0, 1, 10, at::kDouble), 2),
               c10::Error);
}

TEST(FusedEntropyTest, SecondOrderBackwardIsRefused) {
  at::Tensor f = at::randn({2, 6, 3}, at::kDouble).requires_grad_(true);
  const at::Tensor h = FusedPatchSimilarityEntropyPerImage(f, 2).sum();
  EXPECT_THROW(torch::autograd::grad({h}, {f}, {}, /*retain_graph=*/true, /*create_graph=*/true),
               c10::Error);
}

}  // namespace
}  // namespace psaq::gen
