// A communication model for V2's data-parallel rounds: from one measured cell, the time per
// round and the parallel efficiency on p GPUs (docs/scaling.md states and checks it).
//
// Ring all-reduce of b bytes over p ranks (reduce-scatter + all-gather, 2(p-1) steps each moving
// b/p bytes), with bus bandwidth bw (bytes/s) and per-step latency L (s):
//   t_allreduce(p, b) = 2 (p-1)/p * b / bw + 2 (p-1) * L          (0 for p = 1)
// A V2 round does k = allreduces_per_round all-reduces of B/k bytes each (B = bytes_per_round:
// the gradient bytes per student step times k), so
//   t_comm(p)  = 2 (p-1)/p * B / bw + 2 k (p-1) * L
// Weak scaling (each rank keeps its samples: the measured compute per round c stays):
//   t_round(p) = c + t_comm(p),        efficiency E(p) = c / t_round(p)
// Strong scaling (the study's samples split over p ranks: compute shrinks as p_ref / p):
//   t_round(p) = c p_ref / p + t_comm(p),  E(p) = (c p_ref / p) / t_round(p)
// Assumed: compute and communication do not overlap (psaq syncs after the backward pass), the
// ranks are balanced, bw and L are constant in p (one flat ring; a hierarchical or tree
// algorithm changes the latency term), and a step's gradient buckets count as one all-reduce.
#pragma once

#include <string>
#include <vector>

#include "launch/study/collect.h"

namespace psaq::study {

// 2 (p-1)/p * bytes / bus_bytes_per_second + 2 (p-1) * latency_seconds; 0 for p == 1.
// REQUIRES: p >= 1, bytes >= 0, bus_bytes_per_second > 0, latency_seconds >= 0 (TORCH_CHECK).
double RingAllReduceSeconds(int p, double bytes, double bus_bytes_per_second,
                            double latency_seconds);

struct CommModelInput {
  double compute_seconds_per_round = 0;  // c, measured on the reference cell
  double bytes_per_round = 0;            // B
  double allreduces_per_round = 0;       // k
  int reference_ranks = 1;               // p_ref: the reference cell's ranks (strong scaling)
  double bus_bytes_per_second = 100e9;   // bw; default 100 GB/s (NVLink-class bus bandwidth)
  double latency_seconds = 5e-6;         // L; default 5 us per ring step
};

struct CommModelPoint {
  int ranks = 1;
  double comm_seconds = 0;        // t_comm(p) per round
  double weak_round_seconds = 0;  // c + t_comm
  double weak_efficiency = 1;
  double strong_round_seconds = 0;  // c p_ref / p + t_comm
  double strong_efficiency = 1;
};

// The model at each of `ranks`. REQUIRES: input values as above, every p >= 1 (TORCH_CHECK).
std::vector<CommModelPoint> PredictRounds(const CommModelInput& input,
                                          const std::vector<int>& ranks);

// The points as an aligned text table (ranks, t_comm, weak t_round and E, strong t_round and E).
std::string CommModelTable(const std::vector<CommModelPoint>& points);

// `psaq study --action=model`: the model fed from a study's results, and checked against them.
struct CommModelOptions {
  double bus_bytes_per_second = 100e9;  // bw
  double latency_seconds = 5e-6;        // L
  // The reference cell by name; "" = the finished V2 cell with the fewest ranks (then the lowest
  // index). Its compute per round is c, its ranks p_ref.
  std::string reference_cell;
  // c in seconds, replacing the reference cell's (e.g. a round's compute measured on the target
  // GPU, `psaq bench`); 0 = the reference's. The check table keeps the measured c.
  double compute_seconds_per_round = 0;
  // Cores the measured cells shared (0 = as many as ranks). A cell with p > cores ranks
  // time-shares them, so the check scales its predicted compute by p / cores.
  int cores = 0;
  // Rank counts to predict. Default 8 ... 512.
  std::vector<int> ranks = {8, 16, 32, 64, 128, 256, 512};
};

// The reference, the prediction table at options.ranks, and a check table: for every finished V2
// cell of the reference's model and bits, its measured all-reduce and round seconds against the
// model's (compute scaled by the cell's samples per rank over the reference's, and by the
// oversubscription above), and both efficiencies: the reference's compute for the cell's samples
// per rank over the measured and the modelled round time. B and k come from the reference when it
// counted bytes, else from the first finished V2 cell of its model that did (the gradient's size
// does not depend on p). Throws std::runtime_error when no finished V2 cell (or none with bytes) is
// there, or reference_cell names no finished V2 cell.
std::string CommModelReport(const std::vector<CellResult>& results,
                            const CommModelOptions& options);

}  // namespace psaq::study
