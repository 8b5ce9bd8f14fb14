// The cells of a study: one `psaq quantize` run per point of the grid, its directory, its state
// on disk and its command line.
//
// Expansion order (the cell index, stable while the study file is unchanged): model, method,
// bits, num_samples, ranks, seed, the last varying fastest.
// Name: r<ranks>-n<num_samples>-<method>-<bits>-<model label>-s<seed>, e.g.
// "r2-n16-v1-w4a8-fmnist_swin-s0"; the directory is <output_dir>/cells/<name>/ and holds only
// what psaq writes (psaq refuses foreign files there), the log goes to <output_dir>/logs/.
//
// A cell is finished when its report.json says "status": "complete" and, when the study
// evaluates, holds the quantized model's top-1 (psaq writes the report before it evaluates, so a
// run killed during the evaluation has a complete report without one), the rule
// docs/make_results.sh uses.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "launch/study/study_file.h"

namespace psaq::study {

struct Cell {
  int index = 0;
  int ranks = 1;
  int num_samples = 1;
  std::string method;
  Bits bits;
  StudyModel model;
  int seed = 0;
  std::string name;  // CellName(*this)
  std::string dir;   // <output_dir>/cells/<name>
};

// Every cell of the study, in the order above.
std::vector<Cell> ExpandCells(const Study& study);

std::string CellName(const Cell& cell);

enum class CellState {
  kNotRun,       // no directory
  kUnfinished,   // a directory without a readable report (killed, failed or still running)
  kPreempted,    // report.json says "preempted": the run checkpointed and can resume
  kUnevaluated,  // report.json says "complete" but the evaluation the study asks for is missing
  kFinished,     // complete (and evaluated when the study evaluates)
};
const char* CellStateName(CellState state);  // "not_run", "unfinished", ... "finished"

// The state of a cell from its directory: the report at <dir>/report.json, parsed.
CellState ReadCellState(const std::string& dir, bool evaluates);
// The same from a parsed report (null when there is none or it does not parse).
CellState StateOfReport(const nlohmann::json& report, bool evaluates);

// The psaq arguments of the cell (after the binary): quantize, the grid's flags, the study's
// shared flags, its method's flags, --output_dir, and --resume (continue a preempted or killed run,
// or start afresh) or, for kUnevaluated, --overwrite (psaq never resumes a complete run; only the
// evaluation is missing, so the run is redone).
std::vector<std::string> CellArgs(const Study& study, const Cell& cell, CellState state);

// The plan: one header line, then per cell
//   <index>\t<ranks>\t<name>\t<state>\t<arg>\t<arg>...
// Read by cluster/study.sh (local runs and Slurm array tasks): the array task with id <index>
// runs the line's arguments on <ranks> ranks. No field holds a tab (ParseStudy refuses them).
std::string PlanText(const Study& study, const std::vector<Cell>& cells,
                     const std::vector<CellState>& states);

}  // namespace psaq::study
