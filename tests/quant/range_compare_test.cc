// The range diagnostic (quant/range_compare.h): its numbers on a case computed by hand, and on a
// tiny model compared with the very images it was calibrated on (nothing clipped) and with
// brighter ones (the input clipped, the worst point).
#include "quant/range_compare.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "quant/calibration.h"
#include "tests/testing/tiny_models.h"

namespace psaq::quant {
namespace {

// 2 bits on [0, 3]: scale 1, zero point 0, codes 0..3, so Q(x) = clamp(round(x), 0, 3).
//   x     -1    0.4   1    2.6   5     (then 1.25 in a second batch)
//   Q(x)   0    0     1    3     3            1
//   x-Q   -1    0.4   0   -0.4   2            0.25
// signal = 1 + 0.16 + 1 + 6.76 + 25 = 33.92, noise = 1 + 0.16 + 0 + 0.16 + 4 = 5.32,
// SQNR = 10 log10(33.92 / 5.32) = 8.04544 dB; clipped: -1 and 5, 2 of 5.
// With 1.25: signal 35.4825, noise 5.3825, SQNR 8.19030 dB, 2 of 6 clipped.
TEST(RangeCompareTest, HandCheckedPoint) {
  ActivationQuantizer quantizer(2);
  quantizer.SetRange(0, 3);
  PointRangeComparison point;
  point.name = "p";
  AccumulatePoint(point, quantizer, at::tensor({-1.0f, 0.4f, 1.0f, 2.6f, 5.0f}));
  EXPECT_EQ(point.calibrated_min, 0);
  EXPECT_EQ(point.calibrated_max, 3);
  EXPECT_EQ(point.real_min, -1);
  EXPECT_EQ(point.real_max, 5);
  EXPECT_EQ(point.count, 5);
  EXPECT_EQ(point.clipped, 2);
  EXPECT_DOUBLE_EQ(point.clipped_fraction(), 0.4);
  EXPECT_NEAR(point.signal, 33.92, 1e-5);
  EXPECT_NEAR(point.noise, 5.32, 1e-5);
  EXPECT_NEAR(point.sqnr_db(), 8.04544, 1e-4);

  AccumulatePoint(point, quantizer, at::tensor({1.25f}));
  EXPECT_EQ(point.count, 6);
  EXPECT_EQ(point.clipped, 2);
  EXPECT_EQ(point.real_min, -1);
  EXPECT_EQ(point.real_max, 5);
  EXPECT_NEAR(point.sqnr_db(), 8.19030, 1e-4);
}

TEST(RangeCompareTest, ExactValuesHaveInfiniteSqnrAndNullJson) {
  ActivationQuantizer quantizer(2);
  quantizer.SetRange(0, 3);
  PointRangeComparison point;
  point.name = "exact";
  AccumulatePoint(point, quantizer, at::tensor({0.0f, 1.0f, 3.0f}));
  EXPECT_TRUE(std::isinf(point.sqnr_db()));
  EXPECT_EQ(point.clipped, 0);
  const nlohmann::json rows = RangeComparisonJson({point});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_TRUE(rows[0]["sqnr_db"].is_null());
  EXPECT_EQ(rows[0]["point"], "exact");
  EXPECT_EQ(rows[0]["count"], 3);
}

TEST(RangeCompareTest, UncalibratedPointIsRefused) {
  ActivationQuantizer quantizer(8);
  PointRangeComparison point;
  point.name = "blocks.0.attn.qkv.out";
  EXPECT_THROW(AccumulatePoint(point, quantizer, at::ones({2})), c10::Error);
}

class RangeCompareModelTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RangeCompareModelTest, SameImagesClipNothingBrighterImagesClipTheInput) {
  const model::ModelPtr m = testing::TinyModel(GetParam());
  QuantizedModel q(m, QuantConfig{});
  const std::vector<at::Tensor> calib = testing::Batches(testing::TinyConfig(GetParam()), 2, 4, 7);
  Calibrate(q, calib, nullptr);

  // The calibration images themselves: every point's real range IS its calibrated range.
  const std::vector<PointRangeComparison> same = CompareRanges(q, calib);
  // Every enabled activation point (the post-softmax points stay float, 32 bits, under psaq).
  size_t enabled = 0;
  for (int id : q.activation_taps()) enabled += q.activation_quantizer(id).enabled() ? 1 : 0;
  EXPECT_GT(enabled, 0u);
  EXPECT_LT(enabled, q.activation_taps().size());
  EXPECT_EQ(same.size(), enabled);
  EXPECT_EQ(q.mode(), QuantizedModel::Mode::kQuantized);  // restored
  for (const PointRangeComparison& p : same) {
    EXPECT_EQ(p.clipped, 0) << p.name;
    EXPECT_NEAR(p.real_min, p.calibrated_min, 1e-5 * (1 + std::abs(p.real_min))) << p.name;
    EXPECT_NEAR(p.real_max, p.calibrated_max, 1e-5 * (1 + std::abs(p.real_max))) << p.name;
  }
  for (size_t i = 1; i < same.size(); ++i) EXPECT_LE(same[i - 1].sqnr_db(), same[i].sqnr_db());

  // Images 4x as bright: a quarter of the input's real range fits, so the input point clips,
  // and its SQNR falls below the one it had on the calibration images.
  std::vector<at::Tensor> bright;
  for (const at::Tensor& b : calib) bright.push_back(b * 4);
  const std::vector<PointRangeComparison> diff = CompareRanges(q, bright);
  auto find = [](const std::vector<PointRangeComparison>& v, const std::string& name) {
    for (const auto& p : v) {
      if (p.name == name) return p;
    }
    ADD_FAILURE() << "no point " << name;
    return PointRangeComparison{};
  };
  const PointRangeComparison in_same = find(same, kInputTap);
  const PointRangeComparison in_bright = find(diff, kInputTap);
  EXPECT_GT(in_bright.clipped_fraction(), 0.3);
  EXPECT_LT(in_bright.sqnr_db(), in_same.sqnr_db() - 10);
  EXPECT_NEAR(in_bright.real_max, 4 * in_same.real_max, 1e-4 * std::abs(in_same.real_max));

  const std::string table = FormatRangeComparison(diff, 3);
  EXPECT_NE(table.find("real clipped %"), std::string::npos);
  EXPECT_NE(table.find("less damaged points not shown"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Archs, RangeCompareModelTest, ::testing::Values("vit", "swin"));

}  // namespace
}  // namespace psaq::quant
