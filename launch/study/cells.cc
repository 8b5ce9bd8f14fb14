#include "launch/study/cells.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace psaq::study {

std::string CellName(const Cell& cell) {
  return "r" + std::to_string(cell.ranks) + "-n" + std::to_string(cell.num_samples) + "-" +
         cell.method + "-" + BitsName(cell.bits) + "-" + cell.model.label + "-s" +
         std::to_string(cell.seed);
}

std::vector<Cell> ExpandCells(const Study& study) {
  std::vector<Cell> cells;
  for (const StudyModel& model : study.models) {
    for (const std::string& method : study.methods) {
      for (const Bits& bits : study.bits) {
        for (int n : study.num_samples) {
          for (int ranks : study.ranks) {
            for (int seed : study.seeds) {
              Cell cell;
              cell.index = static_cast<int>(cells.size());
              cell.ranks = ranks;
              cell.num_samples = n;
              cell.method = method;
              cell.bits = bits;
              cell.model = model;
              cell.seed = seed;
              cell.name = CellName(cell);
              cell.dir = study.output_dir + "/cells/" + cell.name;
              cells.push_back(std::move(cell));
            }
          }
        }
      }
    }
  }
  return cells;
}

const char* CellStateName(CellState state) {
  switch (state) {
    case CellState::kNotRun:
      return "not_run";
    case CellState::kUnfinished:
      return "unfinished";
    case CellState::kPreempted:
      return "preempted";
    case CellState::kUnevaluated:
      return "unevaluated";
    case CellState::kFinished:
      return "finished";
  }
  return "?";
}

CellState StateOfReport(const nlohmann::json& report, bool evaluates) {
  if (!report.is_object()) return CellState::kUnfinished;
  const auto status = report.find("status");
  if (status == report.end() || !status->is_string()) return CellState::kUnfinished;
  if (*status == "preempted") return CellState::kPreempted;
  if (*status != "complete") return CellState::kUnfinished;
  if (!evaluates) return CellState::kFinished;
  // evaluation.quantized.top1, as docs/make_results.sh requires of an evaluated run.
  const nlohmann::json* node = &report;
  for (const char* key : {"evaluation", "quantized", "top1"}) {
    if (!node->is_object() || !node->contains(key)) return CellState::kUnevaluated;
    node = &(*node)[key];
  }
  return node->is_number() ? CellState::kFinished : CellState::kUnevaluated;
}

CellState ReadCellState(const std::string& dir, bool evaluates) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) return CellState::kNotRun;
  std::ifstream in(dir + "/report.json");
  if (!in) return CellState::kUnfinished;
  // psaq writes the report atomically, so a report that does not parse was not written by it:
  // the cell counts as unfinished and its rerun (psaq) refuses the foreign file, naming it.
  const nlohmann::json report = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  return report.is_discarded() ? CellState::kUnfinished : StateOfReport(report, evaluates);
}

std::vector<std::string> CellArgs(const Study& study, const Cell& cell, CellState state) {
  std::vector<std::string> args = {"quantize",
                                   "--model=" + cell.model.path,
                                   "--method=" + cell.method,
                                   "--num_samples=" + std::to_string(cell.num_samples),
                                   "--w_bits=" + std::to_string(cell.bits.weight),
                                   "--a_bits=" + std::to_string(cell.bits.activation),
                                   "--seed=" + std::to_string(cell.seed)};
  for (const auto& [name, value] : study.flags) args.push_back("--" + name + "=" + value);
  const auto own = study.method_flags.find(cell.method);
  if (own != study.method_flags.end()) {
    for (const auto& [name, value] : own->second) args.push_back("--" + name + "=" + value);
  }
  args.push_back("--output_dir=" + cell.dir);
  args.push_back(state == CellState::kUnevaluated ? "--overwrite" : "--resume");
  return args;
}

std::string PlanText(const Study& study, const std::vector<Cell>& cells,
                     const std::vector<CellState>& states) {
  std::ostringstream out;
  out << "# psaq study plan of " << study.file
      << ": index, ranks, name, state, psaq arguments (tab-separated)\n";
  for (size_t i = 0; i < cells.size(); ++i) {
    const Cell& cell = cells[i];
    out << cell.index << '\t' << cell.ranks << '\t' << cell.name << '\t'
        << CellStateName(states.at(i));
    for (const std::string& arg : CellArgs(study, cell, states.at(i))) out << '\t' << arg;
    out << '\n';
  }
  return out.str();
}

}  // namespace psaq::study
