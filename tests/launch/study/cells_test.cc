#include "launch/study/cells.h"

#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "tests/testing/temp_dir.h"

namespace psaq::study {
namespace {

Study TinyStudy(const std::string& out, const std::string& flags = "{}") {
  return ParseStudy(R"({"output_dir": ")" + out + R"(", "grid": {"ranks": [1, 2, 4],
      "num_samples": [8, 16], "method": ["v1", "v2"], "model": ["m"]}, "flags": )" +
                        flags + "}",
                    "/s/study.json");
}

TEST(CellsTest, GridExpandsToEveryCombinationInTheDocumentedOrder) {
  const Study s = ParseStudy(R"({"output_dir": "/o", "grid": {"ranks": [1, 2], "num_samples": [8],
      "method": ["v1", "v2"], "bits": ["w4a8", "w8a8"], "model": ["m", "n"], "seed": [0, 5]}})",
                             "/s/study.json");
  const std::vector<Cell> cells = ExpandCells(s);
  ASSERT_EQ(cells.size(), 2u * 1 * 2 * 2 * 2 * 2);
  std::set<std::string> names;
  for (size_t i = 0; i < cells.size(); ++i) {
    EXPECT_EQ(cells[i].index, static_cast<int>(i));
    names.insert(cells[i].name);
  }
  EXPECT_EQ(names.size(), cells.size());  // distinct names, so distinct directories
  // Seed varies fastest, then ranks, samples, bits, method; model slowest.
  EXPECT_EQ(cells[0].name, "r1-n8-v1-w4a8-m-s0");
  EXPECT_EQ(cells[1].name, "r1-n8-v1-w4a8-m-s5");
  EXPECT_EQ(cells[2].name, "r2-n8-v1-w4a8-m-s0");
  EXPECT_EQ(cells[4].name, "r1-n8-v1-w8a8-m-s0");
  EXPECT_EQ(cells[8].name, "r1-n8-v2-w4a8-m-s0");
  EXPECT_EQ(cells[16].name, "r1-n8-v1-w4a8-n-s0");
  EXPECT_EQ(cells[16].dir, "/o/cells/r1-n8-v1-w4a8-n-s0");
  EXPECT_EQ(cells[16].model.path, "n");
  EXPECT_EQ(cells[16].ranks, 1);
  EXPECT_EQ(cells[16].bits.weight, 4);
}

TEST(CellsTest, NameHasEveryParameter) {
  Cell c;
  c.ranks = 8;
  c.num_samples = 128;
  c.method = "noise";
  c.bits = Bits{6, 4};
  c.model.label = "deit_base";
  c.seed = 2;
  EXPECT_EQ(CellName(c), "r8-n128-noise-w6a4-deit_base-s2");
}

TEST(CellsTest, StateFollowsTheReport) {
  using nlohmann::json;
  EXPECT_EQ(StateOfReport(json(), false), CellState::kUnfinished);
  EXPECT_EQ(StateOfReport(json{{"status", "preempted"}}, false), CellState::kPreempted);
  EXPECT_EQ(StateOfReport(json{{"status", "running"}}, false), CellState::kUnfinished);
  EXPECT_EQ(StateOfReport(json{{"status", 1}}, false), CellState::kUnfinished);
  EXPECT_EQ(StateOfReport(json{{"status", "complete"}}, false), CellState::kFinished);
  // Evaluated studies need the quantized top-1 too (a run killed while evaluating lacks it).
  EXPECT_EQ(StateOfReport(json{{"status", "complete"}}, true), CellState::kUnevaluated);
  EXPECT_EQ(StateOfReport(json::parse(R"({"status": "complete", "evaluation":
                                          {"float": {"top1": 0.9}}})"),
                          true),
            CellState::kUnevaluated);
  EXPECT_EQ(StateOfReport(json::parse(R"({"status": "complete", "evaluation":
                                          {"quantized": {"top1": 0.81}}})"),
                          true),
            CellState::kFinished);
}

TEST(CellsTest, StateFromDirectory) {
  testing::TempDir dir;
  EXPECT_EQ(ReadCellState(dir / "none", false), CellState::kNotRun);
  dir.Write("killed/checkpoint/state.safetensors", "x");
  EXPECT_EQ(ReadCellState(dir / "killed", false), CellState::kUnfinished);
  dir.Write("corrupt/report.json", R"({"status": "compl)");
  EXPECT_EQ(ReadCellState(dir / "corrupt", false), CellState::kUnfinished);
  dir.Write("preempted/report.json", R"({"status": "preempted"})");
  EXPECT_EQ(ReadCellState(dir / "preempted", false), CellState::kPreempted);
  dir.Write("done/report.json", R"({"status": "complete"})");
  EXPECT_EQ(ReadCellState(dir / "done", false), CellState::kFinished);
  EXPECT_EQ(ReadCellState(dir / "done", true), CellState::kUnevaluated);
  EXPECT_STREQ(CellStateName(CellState::kUnevaluated), "unevaluated");
  EXPECT_STREQ(CellStateName(CellState::kNotRun), "not_run");
}

TEST(CellsTest, ArgsResumeUnlessOnlyTheEvaluationIsMissing) {
  const Study s = TinyStudy("/o", R"({"eval_dataset": "fashion_mnist", "v1_iterations": 20})");
  const std::vector<Cell> cells = ExpandCells(s);
  const Cell& cell = cells[3];
  ASSERT_EQ(cell.name, "r1-n16-v1-w4a8-m-s0");
  const std::vector<std::string> want = {"quantize",
                                         "--model=m",
                                         "--method=v1",
                                         "--num_samples=16",
                                         "--w_bits=4",
                                         "--a_bits=8",
                                         "--seed=0",
                                         "--eval_dataset=fashion_mnist",
                                         "--v1_iterations=20",
                                         "--output_dir=/o/cells/r1-n16-v1-w4a8-m-s0",
                                         "--resume"};
  EXPECT_EQ(CellArgs(s, cell, CellState::kNotRun), want);
  EXPECT_EQ(CellArgs(s, cell, CellState::kPreempted).back(), "--resume");
  EXPECT_EQ(CellArgs(s, cell, CellState::kUnevaluated).back(), "--overwrite");
}

TEST(CellsTest, ArgsAddTheCellsMethodFlagsOnly) {
  const Study s = ParseStudy(R"({"output_dir": "/o", "grid": {"ranks": [1], "num_samples": [8],
      "method": ["v1", "v2"], "model": ["m"]}, "flags": {"samples_per_batch": 4},
      "method_flags": {"v1": {"v1_iterations": 20}, "v2": {"v2_rounds": 2}}})",
                             "/s/study.json");
  const std::vector<Cell> cells = ExpandCells(s);
  ASSERT_EQ(cells.size(), 2u);
  const std::vector<std::string> v1 = CellArgs(s, cells[0], CellState::kNotRun);
  const std::vector<std::string> v2 = CellArgs(s, cells[1], CellState::kNotRun);
  ASSERT_EQ(v1.size(), 11u);
  EXPECT_EQ(v1[7], "--samples_per_batch=4");
  EXPECT_EQ(v1[8], "--v1_iterations=20");
  ASSERT_EQ(v2.size(), 11u);
  EXPECT_EQ(v2[2], "--method=v2");
  EXPECT_EQ(v2[8], "--v2_rounds=2");
}

TEST(CellsTest, PlanHasAHeaderAndOneTabSeparatedLinePerCell) {
  const Study s = TinyStudy("/o");
  const std::vector<Cell> cells = ExpandCells(s);
  ASSERT_EQ(cells.size(), 12u);
  std::vector<CellState> states(cells.size(), CellState::kNotRun);
  states[5] = CellState::kFinished;
  std::istringstream plan(PlanText(s, cells, states));
  std::string line;
  std::getline(plan, line);
  EXPECT_EQ(line.rfind("# psaq study plan of /s/study.json", 0), 0u) << line;
  int n = 0;
  while (std::getline(plan, line)) {
    std::vector<std::string> fields;
    std::istringstream in(line);
    std::string f;
    while (std::getline(in, f, '\t')) fields.push_back(f);
    ASSERT_GE(fields.size(), 4u + 9);
    EXPECT_EQ(fields[0], std::to_string(n));
    EXPECT_EQ(fields[1], std::to_string(cells[n].ranks));
    EXPECT_EQ(fields[2], cells[n].name);
    EXPECT_EQ(fields[3], n == 5 ? "finished" : "not_run");
    EXPECT_EQ(fields[4], "quantize");
    EXPECT_EQ(fields.back(), "--resume");
    ++n;
  }
  EXPECT_EQ(n, 12);
}

}  // namespace
}  // namespace psaq::study
