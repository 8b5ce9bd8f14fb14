// Training learning-rate schedules against values computed by hand (python: the formulas of
// timm's CosineLRScheduler and PyTorch's OneCycleLR, written out in launch/train/train_schedule.h).
#include "launch/train/train_schedule.h"

#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <stdexcept>

namespace psaq::train {
namespace {

// The schedule is a few double operations away from the hand-computed decimal values.
constexpr double kLrRel = 1e-12;

void ExpectLr(const TrainLrOptions& o, int64_t step, double expected) {
  EXPECT_NEAR(TrainLrAtStep(o, step), expected, kLrRel * expected) << "step " << step;
}

TEST(TrainScheduleTest, WarmupCosineRisesLinearlyThenFollowsHalfACosine) {
  TrainLrOptions o;
  o.peak_lr = 1e-3;
  o.final_lr = 1e-5;
  o.total_steps = 10;
  o.warmup_steps = 2;
  ExpectLr(o, 0, 5e-4);
  ExpectLr(o, 1, 1e-3);
  ExpectLr(o, 2, 1e-3);
  ExpectLr(o, 6, 5.05e-4);                 // t = 4/8: halfway between peak and final
  ExpectLr(o, 9, 4.7679631406913064e-05);  // t = 7/8
  for (int64_t s = 2; s + 1 < o.total_steps; ++s) {
    EXPECT_GT(TrainLrAtStep(o, s), TrainLrAtStep(o, s + 1)) << "step " << s;
  }
  o.warmup_steps = 0;
  ExpectLr(o, 0, 1e-3);
}

TEST(TrainScheduleTest, OneCycleMatchesPyTorchsTwoPhaseCosine) {
  TrainLrOptions o;
  o.shape = LrShape::kOneCycle;
  o.peak_lr = 1e-3;
  o.total_steps = 10;    // rise = 0.3 * 10 - 1 = 2
  ExpectLr(o, 0, 4e-5);  // peak / 25
  ExpectLr(o, 1, 5.2000000000000001e-04);
  ExpectLr(o, 2, 1e-3);
  ExpectLr(o, 5, 6.112620219362892e-04);  // p = 3/7 of the descent
  ExpectLr(o, 9, 4e-9);                   // peak / 25 / 1e4 at the last step
}

TEST(TrainScheduleTest, InvalidOptionsAndStepsThrow) {
  TrainLrOptions o;
  o.total_steps = 10;
  EXPECT_THROW(TrainLrAtStep(o, 10), c10::Error);
  EXPECT_THROW(TrainLrAtStep(o, -1), c10::Error);
  TrainLrOptions bad = o;
  bad.warmup_steps = 10;
  EXPECT_THROW(ValidateTrainLr(bad), std::invalid_argument);
  bad = o;
  bad.final_lr = 2 * o.peak_lr;
  EXPECT_THROW(ValidateTrainLr(bad), std::invalid_argument);
  bad = o;
  bad.peak_lr = 0;
  EXPECT_THROW(ValidateTrainLr(bad), std::invalid_argument);
  bad = o;
  bad.shape = LrShape::kOneCycle;
  bad.pct_start = 0.05;  // 0.5 steps of rise
  EXPECT_THROW(ValidateTrainLr(bad), std::invalid_argument);
  EXPECT_EQ(ParseLrShape(LrShapeName(LrShape::kOneCycle)), LrShape::kOneCycle);
  EXPECT_EQ(ParseLrShape("cosine"), LrShape::kWarmupCosine);
  EXPECT_THROW(ParseLrShape("step"), std::invalid_argument);
}

}  // namespace
}  // namespace psaq::train
