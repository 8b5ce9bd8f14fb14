#include "gen/lr_schedule.h"

#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <cmath>

namespace psaq::gen {
namespace {

constexpr double kPi = 3.14159265358979323846;

TEST(LrScheduleTest, OfficialV1ValuesAtTheKeySteps) {
  const WarmupCosineOptions o{0.25, 100, 500};
  EXPECT_DOUBLE_EQ(WarmupCosineLr(o, 0), 0.25 / 100);
  EXPECT_DOUBLE_EQ(WarmupCosineLr(o, 49), 0.25 * 50 / 100);
  EXPECT_DOUBLE_EQ(WarmupCosineLr(o, 99), 0.25);    // warmup - 1: the peak
  EXPECT_DOUBLE_EQ(WarmupCosineLr(o, 100), 0.25);   // warmup: cos(0)
  EXPECT_DOUBLE_EQ(WarmupCosineLr(o, 300), 0.125);  // halfway through the cosine
  // Last step: (it - warmup) / (iterations - warmup) = 399/400, not 1.
  EXPECT_DOUBLE_EQ(WarmupCosineLr(o, 499), 0.25 * 0.5 * (1 + std::cos(kPi * 399 / 400)));
  EXPECT_GT(WarmupCosineLr(o, 499), 0.0);
}

TEST(LrScheduleTest, RestartsEveryEpoch) {
  const WarmupCosineOptions o{0.2, 100, 500};
  for (int64_t it : {0, 99, 100, 250, 499}) {
    EXPECT_EQ(WarmupCosineLrAtStep(o, it), WarmupCosineLr(o, it));
    EXPECT_EQ(WarmupCosineLrAtStep(o, 500 + it), WarmupCosineLr(o, it));
  }
}

TEST(LrScheduleTest, NoWarmupStartsAtBase) {
  const WarmupCosineOptions o{1.0, 0, 10};
  EXPECT_DOUBLE_EQ(WarmupCosineLr(o, 0), 1.0);
  EXPECT_DOUBLE_EQ(WarmupCosineLr(o, 5), 0.5);
  const WarmupCosineOptions all_warmup{1.0, 4, 4};
  EXPECT_DOUBLE_EQ(WarmupCosineLr(all_warmup, 3), 1.0);
}

TEST(LrScheduleTest, RejectsInvalidArguments) {
  const WarmupCosineOptions o{0.2, 100, 500};
  EXPECT_THROW(WarmupCosineLr(o, 500), c10::Error);
  EXPECT_THROW(WarmupCosineLr(o, -1), c10::Error);
  EXPECT_THROW(WarmupCosineLrAtStep(o, -1), c10::Error);
  EXPECT_THROW(WarmupCosineLr(WarmupCosineOptions{0.2, 600, 500}, 0), c10::Error);
  EXPECT_THROW(WarmupCosineLr(WarmupCosineOptions{0.2, 0, 0}, 0), c10::Error);
  EXPECT_THROW(WarmupCosineLr(WarmupCosineOptions{-0.2, 10, 50}, 0), c10::Error);
}

}  // namespace
}  // namespace psaq::gen
