#include "gen/image_prior.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "tests/testing/tensor_near.h"

namespace psaq::gen {
namespace {

// float64 results that differ from a hand computation only in rounding.
constexpr double kRoundoffRel = 1e-14;

// x = [[1, 2, 4], [0, 3, 5]] as [1, 1, 2, 3]. Differences:
//   horizontal (1-2, 2-4, 0-3, 3-5)  -> sqrt(18)
//   vertical   (1-0, 2-3, 4-5)       -> sqrt(3)
//   anti-diag  (0-2, 3-4)            -> sqrt(5)     (x[i+1][j] - x[i][j+1])
//   diagonal   (1-3, 2-5)            -> sqrt(13)    (x[i][j] - x[i+1][j+1])
at::Tensor Tiny() {
  return at::tensor({1.0, 2.0, 4.0, 0.0, 3.0, 5.0}, at::kDouble).view({1, 1, 2, 3});
}
double TinyTv() { return std::sqrt(18.0) + std::sqrt(3.0) + std::sqrt(5.0) + std::sqrt(13.0); }

TEST(ImagePriorTest, TotalVariationHandComputed) {
  EXPECT_NEAR(TotalVariation(Tiny()).item<double>(), TinyTv(), kRoundoffRel * TinyTv());
  // Transposing H and W swaps the horizontal/vertical and maps the diagonals onto themselves.
  EXPECT_NEAR(TotalVariation(Tiny().transpose(2, 3)).item<double>(), TinyTv(),
              kRoundoffRel * TinyTv());
}

TEST(ImagePriorTest, NormsAreOverTheWholeBatchNotPerImage) {
  // Two copies of the image (batch) or two channels: each Frobenius norm grows by sqrt(2).
  const at::Tensor batch = at::cat({Tiny(), Tiny()}, 0);
  const at::Tensor channels = at::cat({Tiny(), Tiny()}, 1);
  EXPECT_NEAR(TotalVariation(batch).item<double>(), std::sqrt(2.0) * TinyTv(),
              kRoundoffRel * TinyTv());
  EXPECT_NEAR(TotalVariation(channels).item<double>(), std::sqrt(2.0) * TinyTv(),
              kRoundoffRel * TinyTv());
}

TEST(ImagePriorTest, TargetLossIsAbsoluteDistanceWithSignedGradient) {
  const double tv = TinyTv();
  for (double target : {tv - 2.0, tv + 3.0}) {
    at::Tensor x = Tiny().requires_grad_(true);
    at::Tensor loss = TotalVariationTargetLoss(x, target);
    EXPECT_NEAR(loss.item<double>(), std::abs(tv - target), kRoundoffRel * tv);
    loss.backward();
    at::Tensor y = Tiny().requires_grad_(true);
    TotalVariation(y).backward();
    // d|TV - v|/dx = sign(TV - v) * dTV/dx.
    const double sign = tv > target ? 1.0 : -1.0;
    EXPECT_TENSOR_NEAR_REL(x.grad(), sign * y.grad(), kRoundoffRel);
  }
}

TEST(ImagePriorTest, TvTargetScalesWithSqrtOfElementCount) {
  EXPECT_DOUBLE_EQ(ScaleTvTarget(2750.0, kTvReferenceNumel), 2750.0);
  EXPECT_DOUBLE_EQ(ScaleTvTarget(2750.0, 4 * kTvReferenceNumel), 5500.0);
  // 32 x 1 x 28 x 28 (Fashion-MNIST): 1/192 of the elements.
  EXPECT_NEAR(ScaleTvTarget(2750.0, 32 * 28 * 28), 2750.0 / std::sqrt(192.0), 1e-12);
  // The rule is consistent with TV itself: a batch of i.i.d. noise 4x larger has TV ~2x larger.
  at::manual_seed(3);
  const double small = TotalVariation(at::randn({8, 3, 64, 64}, at::kDouble)).item<double>();
  const double large = TotalVariation(at::randn({32, 3, 64, 64}, at::kDouble)).item<double>();
  EXPECT_NEAR(large / small, 2.0, 0.02);
  EXPECT_THROW(ScaleTvTarget(2750.0, 0), c10::Error);
  EXPECT_THROW(ScaleTvTarget(-1.0, 10), c10::Error);
}

TEST(ImagePriorTest, SampledTargetIsInRangeAndReproducible) {
  std::mt19937_64 a(42), b(42), c(43);
  for (int i = 0; i < 200; ++i) {
    const double v = SampleTvTarget(a, kTvReferenceNumel);
    EXPECT_GE(v, kTvTargetLow);
    EXPECT_LT(v, kTvTargetHigh);
    EXPECT_EQ(v, SampleTvTarget(b, kTvReferenceNumel));
  }
  EXPECT_NE(SampleTvTarget(a, kTvReferenceNumel), SampleTvTarget(c, kTvReferenceNumel));
  std::mt19937_64 d(7), e(7);
  EXPECT_DOUBLE_EQ(SampleTvTarget(d, kTvReferenceNumel / 4),
                   0.5 * SampleTvTarget(e, kTvReferenceNumel));
}

TEST(ImagePriorTest, L2PriorIsMeanPerImageNorm) {
  const at::Tensor x =
      at::tensor({3.0, 4.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0}, at::kDouble).view({2, 1, 2, 2});
  EXPECT_DOUBLE_EQ(ImageL2Prior(x).item<double>(), (5.0 + 1.0) / 2);
}

TEST(ImagePriorTest, RejectsBadShapes) {
  EXPECT_THROW(TotalVariation(at::zeros({1, 2, 3}, at::kDouble)), c10::Error);
  EXPECT_THROW(TotalVariation(at::zeros({1, 1, 1, 3}, at::kDouble)), c10::Error);
  EXPECT_THROW(TotalVariationTargetLoss(Tiny(), std::nan("")), c10::Error);
  EXPECT_THROW(ImageL2Prior(at::zeros({0, 3}, at::kDouble)), c10::Error);
}

}  // namespace
}  // namespace psaq::gen
