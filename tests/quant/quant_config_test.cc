// QuantConfig's names and labels.
#include "quant/quant_config.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace psaq::quant {
namespace {

TEST(QuantConfigTest, InputRangeNamesRoundTripAndUnknownNamesAreRefused) {
  for (InputRange range : {InputRange::kCalibrated, InputRange::kPixelBox}) {
    EXPECT_EQ(ParseInputRange(InputRangeName(range)), range);
  }
  EXPECT_EQ(InputRangeName(InputRange::kPixelBox), "pixel_box");
  try {
    ParseInputRange("box");
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "unknown input range 'box' (calibrated, pixel_box)");
  }
}

TEST(QuantConfigTest, DescriptionNamesBitsOverridesAndThePixelBox) {
  QuantConfig config;
  config.weight_bits = 4;
  EXPECT_EQ(DescribeQuantConfig(config), "W4A8");
  config.bits_overrides = {{"head.weight", 8}};
  config.input_range = InputRange::kPixelBox;
  EXPECT_EQ(DescribeQuantConfig(config), "W4A8 +1 overrides, pixel-box input");
}

}  // namespace
}  // namespace psaq::quant
