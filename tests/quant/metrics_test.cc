#include "quant/metrics.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "quant/calibration.h"
#include "tests/testing/tiny_models.h"

namespace psaq::quant {
namespace {

// The metrics are float64 sums of a few terms: exact to a few ulps.
constexpr double kMetricAbsTol = 1e-12;

TEST(MetricsTest, SqnrHandComputed) {
  // signal 3^2 + 4^2 = 25, noise 1^2 = 1: 10 log10(25) dB.
  EXPECT_NEAR(Sqnr(at::tensor({3.0f, 4.0f}), at::tensor({3.0f, 5.0f})), 10.0 * std::log10(25.0),
              kMetricAbsTol);
  // noise = signal: 0 dB.
  EXPECT_NEAR(Sqnr(at::tensor({1.0, -2.0}), at::tensor({0.0, 0.0})), 0.0, kMetricAbsTol);
  EXPECT_EQ(Sqnr(at::tensor({1.0, 2.0}), at::tensor({1.0, 2.0})),
            std::numeric_limits<double>::infinity());
  EXPECT_EQ(Sqnr(at::zeros({2}), at::ones({2})), -std::numeric_limits<double>::infinity());
  EXPECT_THROW(Sqnr(at::zeros({2}), at::zeros({3})), c10::Error);
}

TEST(MetricsTest, CosineHandComputed) {
  EXPECT_NEAR(CosineSimilarity(at::tensor({1.0, 2.0}), at::tensor({2.0, 4.0})), 1.0, kMetricAbsTol);
  EXPECT_NEAR(CosineSimilarity(at::tensor({1.0, 0.0}), at::tensor({0.0, 1.0})), 0.0, kMetricAbsTol);
  EXPECT_NEAR(CosineSimilarity(at::tensor({1.0, 1.0}), at::tensor({1.0, 0.0})),
              1.0 / std::sqrt(2.0), kMetricAbsTol);
  EXPECT_EQ(CosineSimilarity(at::zeros({3}), at::zeros({3})), 1.0);
  EXPECT_EQ(CosineSimilarity(at::zeros({3}), at::ones({3})), 0.0);
}

TEST(MetricsTest, PerLayerErrorCoversEveryActivationTapThenTheOutput) {
  const model::ModelConfig config = testing::TinyViTConfig();
  QuantizedModel q(testing::TinyModel("vit"), testing::Bits(8, 8));
  EXPECT_THROW(PerLayerError(q, testing::Batches(config, 1, 2, 5)[0]), c10::Error);
  Calibrate(q, testing::Batches(config, 2, 8, 6), nullptr);
  q.SetMode(QuantizedModel::Mode::kFloat);
  const at::Tensor x = testing::Batches(config, 1, 4, 7)[0];
  const std::vector<TapError> report = PerLayerError(q, x);
  EXPECT_EQ(q.mode(), QuantizedModel::Mode::kFloat);  // restored
  ASSERT_EQ(report.size(), q.activation_taps().size() + 1);
  for (size_t i = 0; i + 1 < report.size(); ++i) {
    EXPECT_EQ(report[i].name, q.tap(q.activation_taps()[i]).name);
    EXPECT_TRUE(std::isfinite(report[i].sqnr_db)) << report[i].name;
    EXPECT_GT(report[i].cosine, 0.9) << report[i].name;
  }
  // The first point only sees its own rounding: the 8-bit input alone.
  EXPECT_EQ(report.front().name, "input");
  const auto& grid_q = q.activation_quantizer(q.TapId("input"));
  EXPECT_NEAR(report.front().sqnr_db, Sqnr(x, grid_q.FakeQuantize(x)), kMetricAbsTol);
  // The last entry is the output, the same number as comparing the two forwards directly.
  EXPECT_EQ(report.back().name, "output");
  const at::Tensor reference = q.Forward(x);
  q.SetMode(QuantizedModel::Mode::kQuantized);
  EXPECT_NEAR(report.back().sqnr_db, Sqnr(reference, q.Forward(x)), kMetricAbsTol);
}

}  // namespace
}  // namespace psaq::quant
