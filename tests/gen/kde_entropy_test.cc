#include "gen/kde_entropy.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "gen/patch_similarity.h"
#include "gen/patch_similarity_entropy.h"
#include "tests/testing/tensor_near.h"
#include "tests/testing/tolerances.h"

namespace psaq::gen {
namespace {

// float64 results that differ from an independent evaluation only in rounding/summation order.
constexpr double kRoundoffRel = 1e-12;
constexpr double kPi = 3.14159265358979323846;
// Central finite differences (step kFdStep) against autograd, relative to max |gradient|.
constexpr double kFdStep = 1e-6;
constexpr double kFiniteDifferenceRel = 1e-5;

// Independent evaluation of §1.4 with explicit loops: the grid from the batch min/max, the
// Gaussian KDE, +floor, -p log p and the trapezoid rule, per image.
std::vector<double> LoopEntropy(const std::vector<std::vector<double>>& s, double h, int g,
                                double floor) {
  double lo = s[0][0], hi = s[0][0];
  for (const auto& row : s) {
    for (double v : row) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  std::vector<double> x(g);
  for (int k = 0; k < g; ++k) x[k] = lo + (hi - lo) * k / (g - 1);
  std::vector<double> out;
  for (const auto& row : s) {
    std::vector<double> f(g);
    for (int k = 0; k < g; ++k) {
      double p = 0;
      for (double v : row) {
        p += std::exp(-(x[k] - v) * (x[k] - v) / (2 * h * h)) / std::sqrt(2 * kPi * h * h);
      }
      p = p / static_cast<double>(row.size()) + floor;
      f[k] = -p * std::log(p);
    }
    double integral = 0;
    for (int k = 0; k + 1 < g; ++k) integral += 0.5 * (f[k] + f[k + 1]) * (x[k + 1] - x[k]);
    out.push_back(integral);
  }
  return out;
}

at::Tensor ToTensor(const std::vector<std::vector<double>>& s) {
  std::vector<double> flat;
  for (const auto& row : s) flat.insert(flat.end(), row.begin(), row.end());
  return at::tensor(flat, at::kDouble).view({static_cast<int64_t>(s.size()), -1});
}

TEST(KdeEntropyTest, ToyBatchMatchesExplicitLoops) {
  // Two images with known similarities (M = 6); image 1 is concentrated, image 0 spread out.
  const std::vector<std::vector<double>> s = {{1.0, 0.92, 0.95, 0.30, -0.10, 0.97},
                                              {1.0, 0.99, 0.985, 0.97, 0.991, 0.995}};
  const at::Tensor per_image = KdeEntropyPerImage(ToTensor(s));
  const std::vector<double> expected = LoopEntropy(s, 0.01, 10, 1e-4);
  EXPECT_TENSOR_NEAR_REL(per_image, at::tensor(expected, at::kDouble), kRoundoffRel);

  KdeOptions wide;
  wide.bandwidth = 0.07;
  wide.grid_points = 7;
  wide.density_floor = 1e-3;
  EXPECT_TENSOR_NEAR_REL(KdeEntropyPerImage(ToTensor(s), wide),
                         at::tensor(LoopEntropy(s, 0.07, 7, 1e-3), at::kDouble), kRoundoffRel);
}

TEST(KdeEntropyTest, FeaturesWithKnownAnglesGiveHandComputedEntropy) {
  // Tokens 1..3 of each image: image 0 at 0, 90 and 45 degrees; image 1 at 0, 60 and 30 degrees.
  // Similarities: image 0 {1, 0, r, 0, 1, r, r, r, 1}, r = 1/sqrt(2); image 1 {1, .5, c, ...}.
  const double r = 1 / std::sqrt(2.0), c = std::sqrt(3.0) / 2;
  const at::Tensor f = at::tensor({5.0, 5.0, 1.0, 0.0, 0.0, 1.0, r, r,  //
                                   -1.0, 2.0, 1.0, 0.0, 0.5, c, c, 0.5},
                                  at::kDouble)
                           .view({2, 4, 2});
  const std::vector<std::vector<double>> s = {{1, 0, r, 0, 1, r, r, r, 1},
                                              {1, 0.5, c, 0.5, 1, c, c, c, 1}};
  const std::vector<double> expected = LoopEntropy(s, 0.01, 10, 1e-4);
  EXPECT_TENSOR_NEAR_REL(PatchSimilarityEntropyPerImage(f, 2), at::tensor(expected, at::kDouble),
                         kRoundoffRel);
  EXPECT_NEAR(PatchSimilarityEntropy(f, 2).item<double>(), 0.5 * (expected[0] + expected[1]),
              kRoundoffRel * std::abs(expected[0]));
}

TEST(KdeEntropyTest, GridIsLinspaceOfBatchMinMaxAndDetached) {
  at::manual_seed(5);
  const at::Tensor s = at::rand({3, 40}, at::kDouble).requires_grad_(true);
  const at::Tensor grid = KdeGrid(s);
  EXPECT_FALSE(grid.requires_grad());
  ASSERT_EQ(grid.numel(), 10);
  EXPECT_EQ(grid[0].item<double>(), s.min().item<double>());
  EXPECT_EQ(grid[9].item<double>(), s.max().item<double>());
  EXPECT_TENSOR_NEAR_REL(
      grid, at::linspace(s.min().item<double>(), s.max().item<double>(), 10, at::kDouble), 0.0);
  EXPECT_EQ(KdeGrid(s.to(at::kFloat)).scalar_type(), at::kFloat);
}

TEST(KdeEntropyTest, GradientMatchesFiniteDifferences) {
  // Features with a spread of similarities; B' = 4 rows for B = 2 images (Swin-like layout).
  at::manual_seed(7);
  const at::Tensor f0 = at::randn({4, 7, 3}, at::kDouble);
  const at::Tensor grid = KdeGrid(PatchSimilarityPerImage(f0, 2));
  for (double bandwidth : {0.01, 0.1}) {
    KdeOptions options;
    options.bandwidth = bandwidth;
    at::Tensor f = f0.clone().requires_grad_(true);
    // The top-level entry uses the same grid (the batch min/max), and none of its gradient.
    at::Tensor h = PatchSimilarityEntropy(f, 2, options);
    h.backward();
    const at::Tensor grad = f.grad().clone();
    at::Tensor fd = at::zeros_like(f0);
    auto run = [&](const at::Tensor& x) {
      return KdeEntropyOnGrid(PatchSimilarityPerImage(x, 2), grid, options).mean().item<double>();
    };
    for (int64_t i = 0; i < f0.numel(); ++i) {
      at::Tensor plus = f0.clone(), minus = f0.clone();
      plus.view({-1})[i] += kFdStep;
      minus.view({-1})[i] -= kFdStep;
      fd.view({-1})[i] = (run(plus) - run(minus)) / (2 * kFdStep);
    }
    EXPECT_TENSOR_NEAR_REL(grad, fd, kFiniteDifferenceRel) << "bandwidth " << bandwidth;
    EXPECT_GT(grad.abs().max().item<double>(), 0.0);
  }
}

TEST(KdeEntropyTest, ChunkedEqualsUnchunkedValuesAndGradients) {
  at::manual_seed(11);
  const at::Tensor f0 = at::randn({6, 9, 4}, at::kDouble);  // B = 3, nW = 2, M = 128
  auto entropy_and_grad = [&](int64_t chunk) {
    KdeOptions options;
    options.chunk_size = chunk;
    at::Tensor f = f0.clone().requires_grad_(true);
    at::Tensor h = PatchSimilarityEntropyPerImage(f, 3, options);
    h.sum().backward();
    return std::make_pair(h.detach(), f.grad());
  };
  const auto whole = entropy_and_grad(0);
  for (int64_t chunk : {1, 7, 64, 127, 128, 1000}) {
    const auto parts = entropy_and_grad(chunk);
    EXPECT_TENSOR_NEAR_REL(parts.first, whole.first, kRoundoffRel) << "chunk " << chunk;
    EXPECT_TENSOR_NEAR_REL(parts.second, whole.second, kRoundoffRel) << "chunk " << chunk;
  }
}

TEST(KdeEntropyTest, SwinLayoutEstimatesEachImageOverAllItsWindows) {
  at::manual_seed(13);
  const int64_t batch = 2, windows = 3;
  const at::Tensor f = at::randn({batch * windows, 5, 4}, at::kDouble);
  const at::Tensor s = PatchCosineSimilarity(f);  // [B*nW, 4, 4]
  // Image b's sample: its windows' similarities concatenated.
  std::vector<std::vector<double>> per_image(batch);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t w = 0; w < windows; ++w) {
      at::Tensor flat = s[b * windows + w].reshape({-1}).contiguous();
      per_image[b].insert(per_image[b].end(), flat.data_ptr<double>(),
                          flat.data_ptr<double>() + flat.numel());
    }
  }
  EXPECT_TENSOR_NEAR_REL(PatchSimilarityEntropyPerImage(f, batch),
                         at::tensor(LoopEntropy(per_image, 0.01, 10, 1e-4), at::kDouble),
                         kRoundoffRel);
}

TEST(KdeEntropyTest, Float32FollowsFloat64) {
  at::manual_seed(17);
  const at::Tensor f = at::randn({2, 17, 8}, at::kDouble);
  const at::Tensor h32 = PatchSimilarityEntropyPerImage(f.to(at::kFloat), 2);
  EXPECT_EQ(h32.scalar_type(), at::kFloat);
  EXPECT_TENSOR_NEAR_REL(h32, PatchSimilarityEntropyPerImage(f, 2), testing::kFloat32ParityRel);
}

TEST(KdeEntropyTest, ConstantSimilaritiesGiveZeroEntropy) {
  const at::Tensor s = at::full({2, 5}, 0.25, at::kDouble);
  const at::Tensor h = KdeEntropyPerImage(s);
  EXPECT_EQ(h.abs().max().item<double>(), 0.0);
}

TEST(KdeEntropyTest, LossIsMinusSumOfBlockEntropies) {
  at::manual_seed(19);
  const std::vector<at::Tensor> blocks = {at::randn({2, 5, 3}, at::kDouble),
                                          at::randn({2, 5, 3}, at::kDouble),
                                          at::randn({8, 4, 2}, at::kDouble)};
  double expected = 0;
  for (const at::Tensor& b : blocks) expected -= PatchSimilarityEntropy(b, 2).item<double>();
  EXPECT_DOUBLE_EQ(PatchSimilarityEntropyLoss(blocks, 2).item<double>(), expected);
  EXPECT_THROW(PatchSimilarityEntropyLoss({}, 2), c10::Error);
}

TEST(KdeEntropyTest, RejectsInvalidOptionsAndShapes) {
  const at::Tensor s = at::rand({2, 5}, at::kDouble);
  KdeOptions bad;
  bad.bandwidth = 0;
  EXPECT_THROW(KdeEntropyPerImage(s, bad), c10::Error);
  bad = KdeOptions();
  bad.grid_points = 1;
  EXPECT_THROW(KdeEntropyPerImage(s, bad), c10::Error);
  bad = KdeOptions();
  bad.density_floor = 0;
  EXPECT_THROW(KdeEntropyPerImage(s, bad), c10::Error);
  bad = KdeOptions();
  bad.chunk_size = -1;
  EXPECT_THROW(KdeEntropyPerImage(s, bad), c10::Error);
  EXPECT_THROW(KdeDensity(s.view({-1}), KdeGrid(s)), c10::Error);
  EXPECT_THROW(KdeDensity(s, KdeGrid(s).view({2, 5})), c10::Error);
  EXPECT_THROW(KdeGrid(at::empty({0}, at::kDouble)), c10::Error);
}

}  // namespace
}  // namespace psaq::gen
