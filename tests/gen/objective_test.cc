#include "gen/objective.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "gen/patch_similarity_entropy.h"
#include "tests/testing/tensor_near.h"

namespace psaq::gen {
namespace {

// Hand-computed values are exact up to double rounding of a few operations.
constexpr double kHandTol = 1e-12;

// x [1, 1, 2, 2] = [[0, 1], [2, 3]]: differences w (-1, -1), h (-2, -2), anti-diagonal
// x[1,0] - x[0,1] = 1, diagonal x[0,0] - x[1,1] = -3, so TV = sqrt(2) + sqrt(8) + 1 + 3.
at::Tensor Ramp() { return at::arange(4, at::kDouble).view({1, 1, 2, 2}); }
const double kRampTv = std::sqrt(2.0) + std::sqrt(8.0) + 1.0 + 3.0;

TEST(ObjectiveTest, KlDiscrepancyMatchesHandValues) {
  // p_T = (1/4, 3/4), p_S = (1/2, 1/2): KL = 1/4 ln(1/2) + 3/4 ln(3/2).
  at::Tensor t = at::tensor({0.0, std::log(3.0)}, at::kDouble).view({1, 2});
  at::Tensor s = at::zeros({1, 2}, at::kDouble);
  const double kl = 0.25 * std::log(0.5) + 0.75 * std::log(1.5);
  EXPECT_NEAR(KlDiscrepancy(t, s).item<double>(), kl, kHandTol);
  // tau = 2: p_T = softmax(0, ln(3)/2) = (1, sqrt 3)/(1 + sqrt 3); with tau^2 scaling x4.
  const double r = std::sqrt(3.0);
  const double p0 = 1 / (1 + r), p1 = r / (1 + r);
  const double kl2 = p0 * std::log(2 * p0) + p1 * std::log(2 * p1);
  DiscrepancyOptions o{DiscrepancyKind::kKlLogits, 2.0, true};
  EXPECT_NEAR(KlDiscrepancy(t, s, o).item<double>(), 4 * kl2, kHandTol);
  o.scale_by_temperature_squared = false;
  EXPECT_NEAR(KlDiscrepancy(t, s, o).item<double>(), kl2, kHandTol);
  // Identical logits: zero per row.
  at::Tensor z = at::randn({3, 5}, at::kDouble);
  EXPECT_NEAR(KlDiscrepancy(z, z).abs().max().item<double>(), 0.0, kHandTol);
}

TEST(ObjectiveTest, FeatureMseAveragesBlocksPerImage) {
  // Block 0: image 0 differs by 1 in 2 of 4 elements (0.5), image 1 by 2 in all (4).
  // Block 1: image 0 by 3 in its only element (9), image 1 equal (0).
  at::Tensor t0 = at::zeros({2, 2, 2}, at::kDouble), s0 = t0.clone();
  s0[0][0][0] = 1;
  s0[0][1][1] = 1;
  s0[1].fill_(2);
  at::Tensor t1 = at::zeros({2, 1}, at::kDouble), s1 = t1.clone();
  s1[0][0] = 3;
  at::Tensor d = FeatureMseDiscrepancy({t0, t1}, {s0, s1});
  EXPECT_TENSOR_NEAR_REL(d, at::tensor({(0.5 + 9) / 2, (4.0 + 0) / 2}, at::kDouble), kHandTol);
  EXPECT_THROW(FeatureMseDiscrepancy({t0}, {s0, s1}), c10::Error);
}

TEST(ObjectiveTest, V1LossCombinesWeightedTerms) {
  at::Tensor x = Ramp();
  at::Tensor logits = at::tensor({0.0, std::log(3.0)}, at::kDouble).view({1, 2});
  at::Tensor labels = at::tensor({int64_t{1}});
  const double ce = -std::log(0.75);
  LossTerms terms = V1Loss({}, logits, labels, x, 5.0, {0.0, 1.0, 0.05});
  EXPECT_NEAR(terms.cross_entropy, ce, kHandTol);
  EXPECT_NEAR(terms.tv, kRampTv - 5.0, kHandTol);
  EXPECT_NEAR(terms.total_value, ce + 0.05 * (kRampTv - 5.0), kHandTol);
  EXPECT_NEAR(terms.total.item<double>(), terms.total_value, 0.0);
  EXPECT_EQ(terms.entropy, 0.0);
  // The entropy term is PatchSimilarityEntropyLoss of the features.
  at::manual_seed(1);
  std::vector<at::Tensor> av = {at::randn({1, 5, 4}, at::kDouble),
                                at::randn({1, 5, 4}, at::kDouble)};
  const double ent = PatchSimilarityEntropyLoss(av, 1).item<double>();
  terms = V1Loss(av, logits, labels, x, 20.0, {2.0, 0.5, 0.1});
  EXPECT_NEAR(terms.entropy, ent, kHandTol);
  EXPECT_NEAR(terms.total_value, 2 * ent + 0.5 * ce + 0.1 * (20.0 - kRampTv), 1e-12);
  // Missing labels with a non-zero CE weight is a caller error.
  EXPECT_THROW(V1Loss({}, logits, at::Tensor(), x, 5.0, {0.0, 1.0, 0.0}), c10::Error);
}

TEST(ObjectiveTest, V2SampleLossSubtractsMeanDiscrepancy) {
  at::Tensor x = Ramp().requires_grad_(true);
  at::Tensor d = at::full({1}, 2.0, at::kDouble);
  const double l2 = std::sqrt(0.0 + 1 + 4 + 9);
  LossTerms terms = V2SampleLoss({}, x, 4.0, d, {0.0, 0.05, 0.5, 1.5});
  EXPECT_NEAR(terms.tv, kRampTv - 4.0, kHandTol);
  EXPECT_NEAR(terms.l2, l2, kHandTol);
  EXPECT_NEAR(terms.discrepancy, 2.0, kHandTol);
  EXPECT_NEAR(terms.total_value, 0.05 * (kRampTv - 4.0) + 0.5 * l2 - 1.5 * 2.0, kHandTol);
  // Gradient of the L2 term alone: x / ||x||.
  LossTerms l2_only = V2SampleLoss({}, x, 0.0, at::Tensor(), {0.0, 0.0, 1.0, 0.0});
  l2_only.total.backward();
  EXPECT_TENSOR_NEAR_REL(x.grad(), x.detach() / l2, kHandTol);
}

TEST(ObjectiveTest, DiscrepancyKindNamesRoundTrip) {
  EXPECT_EQ(ParseDiscrepancyKind(DiscrepancyKindName(DiscrepancyKind::kMseFeatures)),
            DiscrepancyKind::kMseFeatures);
  EXPECT_THROW(ParseDiscrepancyKind("l1"), std::invalid_argument);
}

}  // namespace
}  // namespace psaq::gen
