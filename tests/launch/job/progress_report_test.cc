// launch/job/progress.h and launch/job/run_report.h.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "dist/base/atomic_file.h"
#include "launch/job/progress.h"
#include "launch/job/run_report.h"
#include "tests/testing/single_rank_communicator.h"
#include "tests/testing/temp_dir.h"

namespace psaq::job {
namespace {

TEST(ProgressTest, ThrottlesByTimeAndCountAndAlwaysPrintsTheLast) {
  ProgressReporter quiet(0, {1e9, 0});
  quiet.BeginPhase("v1", 5, 32);
  int lines = 0;
  for (int i = 0; i < 5; ++i) lines += quiet.Update("step") ? 1 : 0;
  EXPECT_EQ(lines, 1);  // only the last unit
  ProgressReporter every2(0, {1e9, 2});
  every2.BeginPhase("v1", 5, 32);
  lines = 0;
  for (int i = 0; i < 5; ++i) lines += every2.Update("step") ? 1 : 0;
  EXPECT_EQ(lines, 3);  // after units 2, 4 and 5
  ProgressReporter other_rank(1, {0, 0});
  other_rank.BeginPhase("v1", 2, 1);
  EXPECT_FALSE(other_rank.Update("step"));
}

TEST(ProgressTest, RateAndEtaFromMeasuredTimes) {
  ProgressReporter p(0, {1e9, 0});
  p.BeginPhase("v2", 10, 8, /*done_units=*/2);
  EXPECT_EQ(p.eta_seconds(), -1);  // nothing measured yet
  for (int i = 0; i < 3; ++i) {
    p.Update("x");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // 2 timed units of 8 samples in about 40 ms: 400 samples/s or less; 5 units left.
  EXPECT_GT(p.rate(), 0);
  EXPECT_LT(p.rate(), 8 * 2 / 0.039);
  // (the clock moves between the two calls)
  EXPECT_NEAR(p.eta_seconds(), 5 * 8 / p.rate(), 1e-3 * p.eta_seconds());
  gen::LossTerms loss;
  loss.total_value = 1.5;
  const std::string line = p.Line("round 1", &loss);
  EXPECT_NE(line.find("v2 round 1 | loss 1.5"), std::string::npos) << line;
  EXPECT_NE(line.find("5/10"), std::string::npos) << line;
}

TEST(RunReportTest, GathersPhasesAndCommunicationShare) {
  testing::TempDir dir;
  testing::SingleRankCommunicator comm;
  RunReportInput in;
  in.status = "complete";
  in.options = {{"seed", 1}};
  in.metrics = {{"output_sqnr_db", 30.0}};
  in.timers.Add("v1_generation", 6.0);
  in.timers.Add("export", 0.5);
  in.wall_seconds = 8.0;
  in.work = 1600;
  in.comm_seconds = 2.0;
  in.grad_sync.seconds = 1.0;
  in.grad_sync.bytes = 1024;
  const std::string path = dir / "report.json";
  nlohmann::json r = WriteRunReport(comm, path, in, at::kCPU);
  EXPECT_EQ(nlohmann::json::parse(base::ReadTextFile(path)), r);
  EXPECT_EQ(r["status"], "complete");
  EXPECT_EQ(r["world_size"], 1);
  EXPECT_EQ(r["phases"]["v1_generation"]["seconds"], 6.0);
  EXPECT_EQ(r["phases"]["calibration"]["seconds"], 0.0);
  EXPECT_EQ(r["phases"].size(), ReportPhases().size());
  EXPECT_EQ(r["ranks"][0]["throughput"], 200.0);
  EXPECT_EQ(r["communication"]["share"], 0.25);
  EXPECT_EQ(r["communication"]["grad_sync_seconds"], 1.0);
  EXPECT_EQ(r["metrics"]["output_sqnr_db"], 30.0);
  PhaseTimers timers;
  EXPECT_THROW(timers.Add("lunch", 1.0), c10::Error);
}

}  // namespace
}  // namespace psaq::job
