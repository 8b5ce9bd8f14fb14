#include "dist/base/utc_time.h"

#include <gtest/gtest.h>

#include <regex>

namespace psaq::base {
namespace {

TEST(UtcTimeTest, FormatsSecondsSinceTheEpochAsIso8601Utc) {
  EXPECT_EQ(UtcString(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(UtcString(1795000926), "2026-11-18T11:22:06Z");
}

TEST(UtcTimeTest, NowHasTheSameForm) {
  EXPECT_TRUE(std::regex_match(UtcNow(), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << UtcNow();
}

}  // namespace
}  // namespace psaq::base
