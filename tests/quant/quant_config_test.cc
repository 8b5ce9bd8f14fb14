// QuantConfig's names and labels.
#include "quant/quant_config.h"

#include <gtest/gtest.h>

#include <map>
#include <stdexcept>
#include <string>
#include <utility>

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
  EXPECT_EQ(DescribeQuantConfig(config), "W4A8 with head.weight=8, pixel-box input");
}

TEST(QuantConfigTest, BitsFromTextReadsWhatPsaqWritesAndNothingElse) {
  for (int bits : {2, 4, 8, kBitsOff}) EXPECT_EQ(BitsFromText(std::to_string(bits)), bits);
  EXPECT_EQ(BitsFromText("08"), 8);
  for (const char* bad : {"", "1", "9", "31", "33", "100", "+8", "-4", " 8", "8 ", "8b", "0x8"}) {
    EXPECT_FALSE(BitsFromText(bad).has_value()) << "'" << bad << "'";
  }
}

TEST(QuantConfigTest, BitsOverridesParseAndPrintAndRefuseMalformedPairs) {
  const std::map<std::string, int> two = {{"head.weight", 8}, {"input", 32}};
  EXPECT_EQ(ParseBitsOverrides("input=32,head.weight=8"), two);
  EXPECT_EQ(BitsOverridesName(two), "head.weight=8,input=32");  // sorted by name
  EXPECT_EQ(ParseBitsOverrides(BitsOverridesName(two)), two);
  EXPECT_TRUE(ParseBitsOverrides("").empty());
  EXPECT_EQ(BitsOverridesName({}), "");
  const std::pair<const char*, const char*> bad[] = {
      {"input", "'input' is not NAME=BITS"},
      {"=8", "'=8' is not NAME=BITS"},
      {"input=8,", "'' is not NAME=BITS"},
      {"input=9", "'input=9': the bit width must be 2..8 or 32"},
      {"input=1", "'input=1': the bit width must be 2..8 or 32"},
      {"input=", "'input=': the bit width must be 2..8 or 32"},
      {"input=8b", "'input=8b': the bit width must be 2..8 or 32"},
      {"input=-4", "'input=-4': the bit width must be 2..8 or 32"},
      {"input=100", "'input=100': the bit width must be 2..8 or 32"},
      {"input=+8", "'input=+8': the bit width must be 2..8 or 32"},
      {"input= 8", "'input= 8': the bit width must be 2..8 or 32"},
      {"input=8,input=6", "'input' is given twice"},
  };
  for (const auto& [text, message] : bad) {
    try {
      ParseBitsOverrides(text);
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos)
          << text << ": " << e.what();
    }
  }
}

}  // namespace
}  // namespace psaq::quant
