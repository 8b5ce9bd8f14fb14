// What a study's cells measured, gathered from their report.json files into one CSV.
//
// Per cell, from its report (launch/job/run_report.h describes the file):
//   wall_seconds     the report's wall_seconds (max over ranks)
//   For V2 (the one method whose ranks all-reduce every step: the student's gradients), a
//   "round" is one V2 round: v2.sample_iterations sample steps, then v2.student_iterations
//   student steps, each ending in one gradient all-reduce:
//   rounds                       options.v2.rounds
//   round_seconds                (phases v2_sample_steps + v2_student_steps, max over ranks) /
//                                rounds; re-calibration between rounds is not included
//   allreduce_seconds_per_round  communication.grad_sync_seconds (max over ranks) / rounds
//   compute_seconds_per_round    round_seconds - allreduce_seconds_per_round
//   allreduces_per_round         options.v2.student_iterations when bytes moved, else 0
//   bytes_per_round              rank 0's grad_sync_bytes / rounds (the bytes each rank hands
//                                to the all-reduce; counted on one rank too, where the
//                                all-reduce moves nothing). psaq's counter also holds the one
//                                broadcast of the student at the start (about one gradient's
//                                bytes), so this overstates a round by that / rounds; the
//                                seconds likewise.
//   Other methods leave these empty (NaN in CellResult).
//   comm_share       communication.share (every collective, over the wall time)
//   top1             evaluation.quantized.top1 when the study evaluates and the report holds it
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "launch/study/cells.h"

namespace psaq::study {

struct CellResult {
  Cell cell;
  CellState state = CellState::kNotRun;
  // NaN when not measured (no report, or not applicable).
  double wall_seconds;
  double rounds;
  double round_seconds;
  double allreduce_seconds_per_round;
  double compute_seconds_per_round;
  double allreduces_per_round;
  double bytes_per_round;
  double comm_share;
  double top1;
  CellResult();
};

// The measurements of `report` (a parsed report.json; null for none) for `cell`.
CellResult ResultOfReport(const Cell& cell, const nlohmann::json& report, bool evaluates);

// Reads every cell's <dir>/report.json (a missing or unparsable one leaves the measurements NaN).
std::vector<CellResult> CollectResults(const Study& study, const std::vector<Cell>& cells);

// The CSV: a header line, then one line per result, in cell order. Columns: index, name, model,
// method, ranks, num_samples, w_bits, a_bits, seed, status (CellStateName), then the
// measurements above in that order; an unmeasured value is an empty field. No field needs
// quoting (names are labels; the model column is the label).
std::string ResultsCsv(const std::vector<CellResult>& results);

}  // namespace psaq::study
