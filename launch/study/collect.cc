#include "launch/study/collect.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

namespace psaq::study {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The number at a path of keys, or NaN: reports of older psaq versions may lack a field, and a
// missing measurement must show as an empty CSV field, not stop the collection.
double Number(const nlohmann::json& j, std::initializer_list<const char*> keys) {
  const nlohmann::json* node = &j;
  for (const char* key : keys) {
    if (!node->is_object() || !node->contains(key)) return kNaN;
    node = &(*node)[key];
  }
  return node->is_number() ? node->get<double>() : kNaN;
}

std::string Field(double v) {
  if (std::isnan(v)) return "";
  std::ostringstream out;
  out.precision(9);
  out << v;
  return out.str();
}

}  // namespace

CellResult::CellResult()
    : wall_seconds(kNaN),
      rounds(kNaN),
      round_seconds(kNaN),
      allreduce_seconds_per_round(kNaN),
      compute_seconds_per_round(kNaN),
      allreduces_per_round(kNaN),
      bytes_per_round(kNaN),
      comm_share(kNaN),
      top1(kNaN) {}

CellResult ResultOfReport(const Cell& cell, const nlohmann::json& report, bool evaluates) {
  CellResult r;
  r.cell = cell;
  r.state = StateOfReport(report, evaluates);
  if (!report.is_object()) return r;
  r.wall_seconds = Number(report, {"wall_seconds"});
  r.comm_share = Number(report, {"communication", "share"});
  r.top1 = Number(report, {"evaluation", "quantized", "top1"});
  const double rounds = Number(report, {"options", "v2", "rounds"});
  if (cell.method == "v2" && rounds > 0) {
    r.rounds = rounds;
    r.round_seconds = (Number(report, {"phases", "v2_sample_steps", "max_seconds"}) +
                       Number(report, {"phases", "v2_student_steps", "max_seconds"})) /
                      rounds;
    r.allreduce_seconds_per_round = Number(report, {"communication", "grad_sync_seconds"}) / rounds;
    r.compute_seconds_per_round = r.round_seconds - r.allreduce_seconds_per_round;
    const nlohmann::json& ranks = report.value("ranks", nlohmann::json::array());
    const double bytes =
        ranks.is_array() && !ranks.empty() ? Number(ranks[0], {"grad_sync_bytes"}) : kNaN;
    r.bytes_per_round = bytes / rounds;
    r.allreduces_per_round = bytes > 0 ? Number(report, {"options", "v2", "student_iterations"})
                                       : (bytes == 0 ? 0 : kNaN);
  }
  return r;
}

std::vector<CellResult> CollectResults(const Study& study, const std::vector<Cell>& cells) {
  std::vector<CellResult> results;
  for (const Cell& cell : cells) {
    nlohmann::json report;  // null: no report
    std::ifstream in(cell.dir + "/report.json");
    if (in) report = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (report.is_discarded()) report = nullptr;
    CellResult r = ResultOfReport(cell, report, study.evaluates());
    // ResultOfReport cannot tell a missing directory from a directory without a report.
    r.state = ReadCellState(cell.dir, study.evaluates());
    results.push_back(std::move(r));
  }
  return results;
}

std::string ResultsCsv(const std::vector<CellResult>& results) {
  std::ostringstream out;
  out << "index,name,model,method,ranks,num_samples,w_bits,a_bits,seed,status,wall_seconds,"
         "rounds,round_seconds,allreduce_seconds_per_round,compute_seconds_per_round,"
         "allreduces_per_round,bytes_per_round,comm_share,top1\n";
  for (const CellResult& r : results) {
    const Cell& c = r.cell;
    out << c.index << ',' << c.name << ',' << c.model.label << ',' << c.method << ',' << c.ranks
        << ',' << c.num_samples << ',' << c.bits.weight << ',' << c.bits.activation << ',' << c.seed
        << ',' << CellStateName(r.state);
    for (double v : {r.wall_seconds, r.rounds, r.round_seconds, r.allreduce_seconds_per_round,
                     r.compute_seconds_per_round, r.allreduces_per_round, r.bytes_per_round,
                     r.comm_share, r.top1}) {
      out << ',' << Field(v);
    }
    out << '\n';
  }
  return out.str();
}

}  // namespace psaq::study
