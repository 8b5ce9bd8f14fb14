#include "launch/study/comm_model.h"

#include <c10/util/Exception.h>
#include <gtest/gtest.h>

namespace psaq::study {
namespace {

// Relative tolerance for sums of a few doubles.
constexpr double kRelTol = 1e-12;

TEST(CommModelTest, RingAllReduceFollowsTheStatedFormula) {
  // p = 1 moves nothing.
  EXPECT_EQ(RingAllReduceSeconds(1, 1e9, 1e9, 1e-3), 0.0);
  // p = 2: 2 * 1/2 * b/bw + 2 * L.
  EXPECT_NEAR(RingAllReduceSeconds(2, 1e9, 1e9, 1e-3), 1.0 + 2e-3, kRelTol);
  // p = 8, by hand: 2*7/8 * 4e8/1e10 = 0.07; 2*7*5e-6 = 7e-5.
  EXPECT_NEAR(RingAllReduceSeconds(8, 4e8, 1e10, 5e-6), 0.07 + 7e-5, kRelTol);
  // The bandwidth term tends to 2 b/bw as p grows; the latency term grows linearly.
  EXPECT_NEAR(RingAllReduceSeconds(1 << 20, 1e9, 1e9, 0), 2.0, 1e-5);
  EXPECT_THROW(RingAllReduceSeconds(0, 1, 1, 0), c10::Error);
  EXPECT_THROW(RingAllReduceSeconds(2, 1, 0, 0), c10::Error);
  EXPECT_THROW(RingAllReduceSeconds(2, -1, 1, 0), c10::Error);
}

TEST(CommModelTest, WeakAndStrongEfficiency) {
  CommModelInput in;
  in.compute_seconds_per_round = 1.0;
  in.bytes_per_round = 1e9;
  in.allreduces_per_round = 10;
  in.reference_ranks = 2;
  in.bus_bytes_per_second = 1e9;
  in.latency_seconds = 1e-3;
  const std::vector<CommModelPoint> points = PredictRounds(in, {1, 2, 4});
  ASSERT_EQ(points.size(), 3u);
  EXPECT_EQ(points[0].comm_seconds, 0.0);
  EXPECT_EQ(points[0].weak_efficiency, 1.0);
  EXPECT_EQ(points[0].strong_round_seconds, 2.0);  // the reference's 2 ranks of work on one
  // p = 4: 2*3/4 * 1 s + 10 all-reduces * 2*3 * 1 ms = 1.5 + 0.06.
  EXPECT_NEAR(points[2].comm_seconds, 1.56, kRelTol);
  EXPECT_NEAR(points[2].weak_round_seconds, 2.56, kRelTol);
  EXPECT_NEAR(points[2].weak_efficiency, 1.0 / 2.56, kRelTol);
  EXPECT_NEAR(points[2].strong_round_seconds, 0.5 + 1.56, kRelTol);
  EXPECT_NEAR(points[2].strong_efficiency, 0.5 / 2.06, kRelTol);
  // Efficiency never rises with p at fixed bandwidth and latency.
  EXPECT_GT(points[1].weak_efficiency, points[2].weak_efficiency);
  in.compute_seconds_per_round = 0;
  EXPECT_THROW(PredictRounds(in, {2}), c10::Error);
}

CellResult Measured(const std::string& name, int ranks, int samples, double compute,
                    double allreduce, double bytes) {
  CellResult r;
  r.cell.name = name;
  r.cell.method = "v2";
  r.cell.ranks = ranks;
  r.cell.num_samples = samples;
  r.cell.model.label = "m";
  r.state = CellState::kFinished;
  r.compute_seconds_per_round = compute;
  r.allreduce_seconds_per_round = allreduce;
  r.round_seconds = compute + allreduce;
  r.bytes_per_round = bytes;
  r.allreduces_per_round = bytes > 0 ? 5 : 0;
  return r;
}

TEST(CommModelTest, ReportTakesComputeFromTheFewestRanksAndBytesFromAMultiRankCell) {
  const std::vector<CellResult> results = {Measured("one", 1, 8, 2.0, 0.0, 0.0),
                                           Measured("two", 2, 8, 1.0, 0.5, 1e9)};
  CommModelOptions options;
  options.bus_bytes_per_second = 1e9;
  options.latency_seconds = 0;
  options.ranks = {2};
  const std::string text = CommModelReport(results, options);
  EXPECT_NE(text.find("reference one: c = 2.000000 s"), std::string::npos) << text;
  EXPECT_NE(text.find("B = 1000000000 bytes and k = 5 all-reduces per round (two)"),
            std::string::npos)
      << text;
  // Cell "two": 4 samples per rank against the reference's 8: predicted compute 1.0 s, comm
  // 2*1/2 * 1e9/1e9 = 1.0 s, round 2.0 s against 1.5 s measured: +33.3%.
  EXPECT_NE(text.find("+33.3%"), std::string::npos) << text;
  // Efficiency: 1.0 s of reference compute over 1.5 s measured and 2.0 s modelled.
  EXPECT_NE(text.find("+33.3%  0.667      0.500"), std::string::npos) << text;
  // A given compute time replaces the reference's in the prediction, not in the check.
  options.compute_seconds_per_round = 0.5;
  const std::string given = CommModelReport(results, options);
  EXPECT_NE(given.find("predicted with c = 0.500000 s"), std::string::npos) << given;
  EXPECT_NE(given.find("1.000000      1.500000     0.333"), std::string::npos) << given;
  EXPECT_NE(given.find("+33.3%"), std::string::npos) << given;
}

TEST(CommModelTest, ReportRefusesStudiesWithoutTheCellsItNeeds) {
  CommModelOptions options;
  EXPECT_THROW(CommModelReport({}, options), std::runtime_error);
  EXPECT_THROW(CommModelReport({Measured("one", 1, 8, 2.0, 0.0, 0.0)}, options),
               std::runtime_error);
  options.reference_cell = "nope";
  EXPECT_THROW(CommModelReport({Measured("two", 2, 8, 1.0, 0.5, 1e9)}, options),
               std::runtime_error);
}

}  // namespace
}  // namespace psaq::study
