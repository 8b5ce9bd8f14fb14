// psaq study: a scaling study's plan, results and communication model (launch/study/). The cells
// themselves run through cluster/study.sh (Slurm job arrays or local mpirun), which calls this.
#include <cstdio>
#include <sstream>

#include "dist/base/atomic_file.h"
#include "dist/base/text_table.h"
#include "launch/flags.h"
#include "launch/process.h"
#include "launch/study/cells.h"
#include "launch/study/collect.h"
#include "launch/study/comm_model.h"
#include "launch/subcommand.h"

DEFINE_string(action, "plan",
              "plan: write <output_dir>/plan.tsv (every cell, its state and command line) and "
              "list the cells; collect: write <output_dir>/study.csv from the cells' report.json "
              "files; model: predict V2's time per round and efficiency at --predict_ranks from "
              "the measured cells and check the model against them (docs/scaling.md).");
DEFINE_string(study, "", "The study file (JSON; launch/study/study_file.h describes it).");
DEFINE_string(zoo_dir, PSAQ_ZOO_DIR,
              "Where the study's model names are looked up (<name>.safetensors).");
DEFINE_double(bus_gbps, 100.0, "model: all-reduce bus bandwidth in GB/s (1e9 bytes/s).");
DEFINE_double(latency_us, 5.0, "model: latency per ring step in microseconds.");
DEFINE_string(predict_ranks, "8,16,32,64,128,256,512", "model: rank counts to predict.");
DEFINE_string(reference_cell, "",
              "model: the cell whose compute per round is used (default: the finished V2 cell "
              "with the fewest ranks).");
DEFINE_double(compute_seconds, 0,
              "model: compute seconds per round for the prediction (e.g. measured on the target "
              "GPU); 0 = the reference cell's.");
DEFINE_int32(cores, 0,
             "model: cores the measured cells shared (0: one per rank); a cell with more ranks "
             "time-shares them, and the check scales its compute by ranks / cores.");

DEFINE_validator(bus_gbps, &psaq::launch::PositiveDouble);
DEFINE_validator(latency_us, &psaq::launch::NonNegativeDouble);
DEFINE_validator(compute_seconds, &psaq::launch::NonNegativeDouble);
DEFINE_validator(cores, &psaq::launch::AtLeast<0>);

namespace psaq::launch {
namespace {

std::vector<int> ParseRankList(const std::string& text) {
  std::vector<int> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    int p = 0;
    try {
      p = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || p < 1) {
      throw UsageError("--predict_ranks: '" + item + "' is not a rank count >= 1");
    }
    out.push_back(p);
  }
  if (out.empty()) throw UsageError("--predict_ranks is empty");
  return out;
}

study::Study LoadStudy() {
  study::StudyParseOptions options;
  options.zoo_dir = FLAGS_zoo_dir;
  options.allowed_flags = FindSubcommand("quantize")->flags;
  return study::ReadStudyFile(FLAGS_study, options);
}

}  // namespace

void CheckStudyFlags() {
  if (FLAGS_study.empty()) throw UsageError("--study is required");
  if (FLAGS_action != "plan" && FLAGS_action != "collect" && FLAGS_action != "model") {
    throw UsageError("--action must be plan, collect or model, got '" + FLAGS_action + "'");
  }
  ParseRankList(FLAGS_predict_ranks);
}

int RunStudy(ProcessContext& process) {
  if (!process.is_root()) return 0;  // one process's work; extra ranks have nothing to do
  const study::Study s = LoadStudy();
  const std::vector<study::Cell> cells = study::ExpandCells(s);
  const bool evaluates = s.evaluates();

  if (FLAGS_action == "plan") {
    std::vector<study::CellState> states;
    base::TextTable table({"index", "cell", "ranks", "state"});
    int pending = 0;
    for (const study::Cell& cell : cells) {
      states.push_back(study::ReadCellState(cell.dir, evaluates));
      pending += states.back() != study::CellState::kFinished;
      table.AddRow({std::to_string(cell.index), cell.name, std::to_string(cell.ranks),
                    study::CellStateName(states.back())});
    }
    base::MakeDirs(s.output_dir);
    const std::string plan = s.output_dir + "/plan.tsv";
    base::WriteFileAtomic(plan, study::PlanText(s, cells, states));
    std::printf("%s%zu cells, %d finished, %d to run; plan: %s\n", table.Render().c_str(),
                cells.size(), static_cast<int>(cells.size()) - pending, pending, plan.c_str());
  } else if (FLAGS_action == "collect") {
    const auto results = study::CollectResults(s, cells);
    base::MakeDirs(s.output_dir);
    const std::string csv = s.output_dir + "/study.csv";
    base::WriteFileAtomic(csv, study::ResultsCsv(results));
    int finished = 0;
    for (const auto& r : results) finished += r.state == study::CellState::kFinished;
    std::printf("%zu cells, %d finished; wrote %s\n", results.size(), finished, csv.c_str());
  } else {
    study::CommModelOptions options;
    options.bus_bytes_per_second = FLAGS_bus_gbps * 1e9;
    options.latency_seconds = FLAGS_latency_us * 1e-6;
    options.reference_cell = FLAGS_reference_cell;
    options.cores = FLAGS_cores;
    options.compute_seconds_per_round = FLAGS_compute_seconds;
    options.ranks = ParseRankList(FLAGS_predict_ranks);
    std::fputs(study::CommModelReport(study::CollectResults(s, cells), options).c_str(), stdout);
  }
  return 0;
}

}  // namespace psaq::launch
