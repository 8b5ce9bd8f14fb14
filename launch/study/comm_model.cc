#include "launch/study/comm_model.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <stdexcept>

#include "dist/base/text_table.h"

namespace psaq::study {
namespace {

// A signed relative error: "+33.3%", "-5.0%".
std::string Percent(double fraction) {
  return (fraction >= 0 ? "+" : "") + base::FormatFixed(100.0 * fraction, 1) + "%";
}

}  // namespace

double RingAllReduceSeconds(int p, double bytes, double bus_bytes_per_second,
                            double latency_seconds) {
  TORCH_CHECK(p >= 1, "RingAllReduceSeconds: p must be >= 1, got ", p);
  TORCH_CHECK(bytes >= 0 && bus_bytes_per_second > 0 && latency_seconds >= 0,
              "RingAllReduceSeconds: need bytes >= 0, bandwidth > 0, latency >= 0");
  if (p == 1) return 0.0;
  return 2.0 * (p - 1) / p * bytes / bus_bytes_per_second + 2.0 * (p - 1) * latency_seconds;
}

std::vector<CommModelPoint> PredictRounds(const CommModelInput& in, const std::vector<int>& ranks) {
  TORCH_CHECK(in.compute_seconds_per_round > 0, "PredictRounds: compute per round must be > 0");
  TORCH_CHECK(in.allreduces_per_round >= 0 && in.reference_ranks >= 1,
              "PredictRounds: need allreduces_per_round >= 0 and reference_ranks >= 1");
  std::vector<CommModelPoint> points;
  for (int p : ranks) {
    CommModelPoint point;
    point.ranks = p;
    // k all-reduces of B/k bytes: the bandwidth term sees B, the latency term k times.
    point.comm_seconds =
        RingAllReduceSeconds(p, in.bytes_per_round, in.bus_bytes_per_second, 0.0) +
        in.allreduces_per_round * RingAllReduceSeconds(p, 0.0, 1.0, in.latency_seconds);
    const double c = in.compute_seconds_per_round;
    point.weak_round_seconds = c + point.comm_seconds;
    point.weak_efficiency = c / point.weak_round_seconds;
    const double c_strong = c * in.reference_ranks / p;
    point.strong_round_seconds = c_strong + point.comm_seconds;
    point.strong_efficiency = c_strong / point.strong_round_seconds;
    points.push_back(point);
  }
  return points;
}

std::string CommModelTable(const std::vector<CommModelPoint>& points) {
  base::TextTable table(
      {"ranks", "allreduce s/round", "weak s/round", "weak eff", "strong s/round", "strong eff"});
  for (int c = 0; c < 6; ++c) table.SetAlign(c, base::TextTable::Align::kRight);
  for (const CommModelPoint& p : points) {
    table.AddRow(
        {std::to_string(p.ranks), base::FormatFixed(p.comm_seconds, 6),
         base::FormatFixed(p.weak_round_seconds, 6), base::FormatFixed(p.weak_efficiency, 3),
         base::FormatFixed(p.strong_round_seconds, 6), base::FormatFixed(p.strong_efficiency, 3)});
  }
  return table.Render();
}

std::string CommModelReport(const std::vector<CellResult>& results,
                            const CommModelOptions& options) {
  auto usable = [](const CellResult& r) {
    return r.state == CellState::kFinished && r.cell.method == "v2" &&
           r.compute_seconds_per_round > 0 && r.bytes_per_round >= 0;
  };
  const CellResult* ref = nullptr;
  for (const CellResult& r : results) {
    if (!usable(r)) continue;
    if (!options.reference_cell.empty()) {
      if (r.cell.name == options.reference_cell) ref = &r;
    } else if (ref == nullptr || r.cell.ranks < ref->cell.ranks) {
      ref = &r;
    }
  }
  if (ref == nullptr) {
    throw std::runtime_error(options.reference_cell.empty()
                                 ? "the model needs a finished V2 cell; the study has none"
                                 : "--reference_cell=" + options.reference_cell +
                                       " is not a finished V2 cell of the study");
  }
  // Bytes per round: the gradient size does not depend on the ranks, so another cell of the
  // model may supply them when the reference counted none.
  const CellResult* bytes_from = ref->bytes_per_round > 0 ? ref : nullptr;
  for (const CellResult& r : results) {
    if (bytes_from == nullptr && usable(r) && r.bytes_per_round > 0 &&
        r.cell.model.label == ref->cell.model.label) {
      bytes_from = &r;
    }
  }
  if (bytes_from == nullptr) {
    throw std::runtime_error("the model needs a finished V2 cell of " + ref->cell.model.label +
                             " that all-reduced gradients (bytes per round > 0)");
  }
  CommModelInput in;
  in.compute_seconds_per_round = ref->compute_seconds_per_round;
  in.bytes_per_round = bytes_from->bytes_per_round;
  in.allreduces_per_round = bytes_from->allreduces_per_round;
  in.reference_ranks = ref->cell.ranks;
  in.bus_bytes_per_second = options.bus_bytes_per_second;
  in.latency_seconds = options.latency_seconds;

  std::string text = "reference " + ref->cell.name +
                     ": c = " + base::FormatFixed(in.compute_seconds_per_round, 6) +
                     " s compute per round; " + "B = " + base::FormatFixed(in.bytes_per_round, 0) +
                     " bytes and k = " + base::FormatFixed(in.allreduces_per_round, 0) +
                     " all-reduces per round (" + bytes_from->cell.name +
                     "); bw = " + base::FormatFixed(in.bus_bytes_per_second / 1e9, 3) +
                     " GB/s, L = " + base::FormatFixed(in.latency_seconds * 1e6, 3) + " us\n";
  text +=
      "t_comm(p) = 2(p-1)/p * B/bw + 2k(p-1) * L; weak: c + t_comm; strong: c*p_ref/p + t_comm\n";
  CommModelInput target = in;
  if (options.compute_seconds_per_round > 0) {
    target.compute_seconds_per_round = options.compute_seconds_per_round;
    text += "predicted with c = " + base::FormatFixed(target.compute_seconds_per_round, 6) +
            " s (given, not the reference's)\n";
  }
  text += CommModelTable(PredictRounds(target, options.ranks));

  // The check: each measured V2 cell of this model and bits against the model's prediction.
  // Efficiency of a cell: the reference's compute for the cell's samples per rank (one rank per
  // core, nothing else) over the round time, measured or modelled.
  base::TextTable check({"cell", "ranks", "samples/rank", "allreduce s/round", "model", "round s",
                         "model round s", "round error", "eff", "model eff"});
  for (int c = 1; c < 10; ++c) check.SetAlign(c, base::TextTable::Align::kRight);
  const double ref_per_rank = static_cast<double>(ref->cell.num_samples) / ref->cell.ranks;
  for (const CellResult& r : results) {
    if (!usable(r) || r.cell.model.label != ref->cell.model.label ||
        !(r.cell.bits == ref->cell.bits)) {
      continue;
    }
    const int p = r.cell.ranks;
    const double per_rank = static_cast<double>(r.cell.num_samples) / p;
    const double share =
        options.cores > 0 ? std::max(1.0, static_cast<double>(p) / options.cores) : 1.0;
    const double ideal = in.compute_seconds_per_round * per_rank / ref_per_rank;
    CommModelInput at = in;
    at.compute_seconds_per_round = ideal * share;
    const CommModelPoint point = PredictRounds(at, {p}).front();
    check.AddRow({r.cell.name, std::to_string(p), base::FormatFixed(per_rank, 1),
                  base::FormatFixed(r.allreduce_seconds_per_round, 6),
                  base::FormatFixed(point.comm_seconds, 6), base::FormatFixed(r.round_seconds, 4),
                  base::FormatFixed(point.weak_round_seconds, 4),
                  Percent(point.weak_round_seconds / r.round_seconds - 1),
                  base::FormatFixed(ideal / r.round_seconds, 3),
                  base::FormatFixed(ideal / point.weak_round_seconds, 3)});
  }
  text += "\nmeasured vs model (compute scaled by samples per rank" +
          std::string(options.cores > 0 ? " and by ranks / " + std::to_string(options.cores) +
                                              " cores where oversubscribed"
                                        : "") +
          "):\n" + check.Render();
  return text;
}

}  // namespace psaq::study
