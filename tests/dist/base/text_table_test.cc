#include "dist/base/text_table.h"

#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace psaq::base {
namespace {

TEST(TextTableTest, AlignsColumnsUnderARule) {
  TextTable table({"layer", "SQNR dB"});
  table.SetAlign(1, TextTable::Align::kRight);
  table.AddRow({"blocks.0.attn.qkv", "31.20"});
  table.AddRow({"head", "7.5"});
  EXPECT_EQ(table.num_rows(), 2);
  EXPECT_EQ(table.Render(),
            "layer              SQNR dB\n"
            "-----------------  -------\n"
            "blocks.0.attn.qkv    31.20\n"
            "head                   7.5\n");
  // Indentation; a left-aligned last column leaves no trailing spaces.
  TextTable left({"a", "b"});
  left.AddRow({"xyz", "1"});
  left.AddRow({"x", "1234"});
  EXPECT_EQ(left.Render(2),
            "  a    b\n"
            "  ---  ----\n"
            "  xyz  1\n"
            "  x    1234\n");
}

TEST(TextTableTest, RefusesRowsOfTheWrongWidth) {
  TextTable table({"a", "b"});
  EXPECT_THROW(table.AddRow({"1"}), c10::Error);
  EXPECT_THROW(table.SetAlign(2, TextTable::Align::kLeft), c10::Error);
}

TEST(RenderFieldsTest, AlignsValuesAndIndentsContinuationLines) {
  EXPECT_EQ(RenderFields({{"model", "vit"}, {"top-1", "81.20%"}, {"notes", "one\ntwo"}}),
            "model  vit\n"
            "top-1  81.20%\n"
            "notes  one\n"
            "       two\n");
}

TEST(FormatTest, NumbersBytesAndDurations) {
  EXPECT_EQ(FormatFixed(3.14159, 2), "3.14");
  EXPECT_EQ(FormatFixed(std::numeric_limits<double>::infinity(), 2), "inf");
  EXPECT_EQ(FormatFixed(-std::numeric_limits<double>::infinity(), 2), "-inf");
  EXPECT_EQ(FormatFixed(std::nan(""), 2), "nan");
  EXPECT_EQ(FormatCount(0), "0");
  EXPECT_EQ(FormatCount(999), "999");
  EXPECT_EQ(FormatCount(1000), "1,000");
  EXPECT_EQ(FormatCount(86567656), "86,567,656");
  EXPECT_EQ(FormatCount(-1234567), "-1,234,567");
  EXPECT_EQ(FormatBytes(999), "999 B");
  EXPECT_EQ(FormatBytes(1024), "1.0 KiB");
  EXPECT_EQ(FormatBytes(81464), "79.6 KiB");  // 79.55 KiB
  EXPECT_EQ(FormatBytes(3 * 1024 * 1024), "3.0 MiB");
  EXPECT_EQ(FormatSeconds(4.25), "4.2s");  // printf rounds half to even here: 4.25 -> 4.2
  EXPECT_EQ(FormatSeconds(125), "2m05s");
  EXPECT_EQ(FormatSeconds(3723), "1h02m03s");
  EXPECT_EQ(FormatSeconds(-1), "?");
}

}  // namespace
}  // namespace psaq::base
