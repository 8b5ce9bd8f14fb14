#include "launch/study/collect.h"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "tests/testing/temp_dir.h"

namespace psaq::study {
namespace {

// A report.json as launch/job/run_report writes it, cut to the fields the study reads; the
// numbers are chosen so every derived value is exact in binary floating point.
std::string V2Report(double top1) {
  return R"({"status": "complete", "world_size": 2, "wall_seconds": 12.5,
    "options": {"v2": {"rounds": 4, "student_iterations": 50}},
    "phases": {"v2_sample_steps": {"seconds": 5.0, "max_seconds": 6.0},
               "v2_student_steps": {"seconds": 1.0, "max_seconds": 2.0}},
    "ranks": [{"rank": 0, "grad_sync_bytes": 4000000.0}, {"rank": 1, "grad_sync_bytes": 4000000.0}],
    "communication": {"seconds": 1.5, "share": 0.125, "grad_sync_seconds": 1.0},
    "evaluation": {"quantized": {"top1": )" +
         std::to_string(top1) + "}}}";
}

TEST(CollectTest, V2ReportGivesRoundTimesAndBytes) {
  Cell cell;
  cell.method = "v2";
  const CellResult r = ResultOfReport(cell, nlohmann::json::parse(V2Report(0.75)), true);
  EXPECT_EQ(r.state, CellState::kFinished);
  EXPECT_EQ(r.wall_seconds, 12.5);
  EXPECT_EQ(r.rounds, 4);
  EXPECT_EQ(r.round_seconds, (6.0 + 2.0) / 4);  // max over ranks of both step phases
  EXPECT_EQ(r.allreduce_seconds_per_round, 1.0 / 4);
  EXPECT_EQ(r.compute_seconds_per_round, 2.0 - 0.25);
  EXPECT_EQ(r.allreduces_per_round, 50);
  EXPECT_EQ(r.bytes_per_round, 1e6);
  EXPECT_EQ(r.comm_share, 0.125);
  EXPECT_EQ(r.top1, 0.75);
}

TEST(CollectTest, OneRankV2MovesNoBytesAndV1HasNoRounds) {
  Cell v2;
  v2.method = "v2";
  nlohmann::json report = nlohmann::json::parse(V2Report(0.5));
  report["ranks"] = nlohmann::json::array({{{"rank", 0}, {"grad_sync_bytes", 0.0}}});
  const CellResult one = ResultOfReport(v2, report, true);
  EXPECT_EQ(one.bytes_per_round, 0);
  EXPECT_EQ(one.allreduces_per_round, 0);

  Cell v1;
  v1.method = "v1";
  const CellResult r = ResultOfReport(v1, nlohmann::json::parse(V2Report(0.5)), false);
  EXPECT_EQ(r.wall_seconds, 12.5);
  EXPECT_TRUE(std::isnan(r.rounds));
  EXPECT_TRUE(std::isnan(r.bytes_per_round));
  EXPECT_EQ(r.top1, 0.5);
}

TEST(CollectTest, CsvHasOneRowPerCellWithEmptyFieldsForWhatWasNotMeasured) {
  testing::TempDir dir;
  const Study s = ParseStudy(R"({"output_dir": ")" + (dir / "o") + R"(", "grid": {"ranks": [1, 2],
      "num_samples": [8], "method": ["v2"], "model": ["m"]},
      "flags": {"eval_dataset": "fashion_mnist"}})",
                             dir / "study.json");
  const std::vector<Cell> cells = ExpandCells(s);
  dir.Write("o/cells/" + cells[1].name + "/report.json", V2Report(0.75));
  const std::vector<CellResult> results = CollectResults(s, cells);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].state, CellState::kNotRun);
  EXPECT_EQ(results[1].state, CellState::kFinished);

  std::istringstream csv(ResultsCsv(results));
  std::string header, row0, row1, extra;
  std::getline(csv, header);
  std::getline(csv, row0);
  std::getline(csv, row1);
  EXPECT_FALSE(std::getline(csv, extra));
  EXPECT_EQ(header,
            "index,name,model,method,ranks,num_samples,w_bits,a_bits,seed,status,wall_seconds,"
            "rounds,round_seconds,allreduce_seconds_per_round,compute_seconds_per_round,"
            "allreduces_per_round,bytes_per_round,comm_share,top1");
  EXPECT_EQ(row0, "0,r1-n8-v2-w4a8-m-s0,m,v2,1,8,4,8,0,not_run,,,,,,,,,");
  EXPECT_EQ(
      row1,
      "1,r2-n8-v2-w4a8-m-s0,m,v2,2,8,4,8,0,finished,12.5,4,2,0.25,1.75,50,1000000,0.125,0.75");
}

}  // namespace
}  // namespace psaq::study
