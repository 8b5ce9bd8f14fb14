// Rank 0's progress lines during long phases, throttled:
//   v1 batch 3/8 iter 200/1000 | loss 5.412 ent -0.812 ce 1.204 tv 88.1 | 41.3 img-it/s | ETA 3m12s
// One line at most every `interval_seconds` (and always for the last unit of work), through
// LOG(INFO) on rank 0; other ranks print nothing. ETA = remaining work units / measured rate
// since the phase started (excluding the first unit, which pays warm-up costs).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "gen/objective.h"

namespace psaq::job {

struct ProgressOptions {
  // Minimum seconds between two lines. Default 5. 0 = a line for every update.
  double interval_seconds = 5.0;
  // Also print every N units of work regardless of time (0 = off). Default 0.
  int64_t every_n = 0;
};

class ProgressReporter {
 public:
  // `rank`: lines are printed only when rank == 0.
  ProgressReporter(int rank, const ProgressOptions& options = {});

  // Starts a phase of `total_units` units of work (e.g. image steps of this rank), each worth
  // `samples_per_unit` samples·iterations for the rate. Resets the clock and the counters;
  // `done_units` counts work already done before (a resume), excluded from the rate.
  void BeginPhase(const std::string& phase, int64_t total_units, double samples_per_unit,
                  int64_t done_units = 0);

  // One unit done. `where` locates it ("batch 3/8 iter 200/1000"), `loss` is shown when given.
  // Returns true when a line was printed (on rank 0).
  bool Update(const std::string& where, const gen::LossTerms* loss = nullptr);

  // The line Update would print now (for tests).
  std::string Line(const std::string& where, const gen::LossTerms* loss) const;

  int64_t done_units() const { return done_; }
  // Samples·iterations per second since the phase began (0 before two units).
  double rate() const;
  // Seconds left at the current rate (-1 when unknown).
  double eta_seconds() const;

 private:
  using Clock = std::chrono::steady_clock;
  int rank_;
  ProgressOptions options_;
  std::string phase_;
  int64_t total_ = 0;
  int64_t done_ = 0;
  int64_t resumed_ = 0;
  double samples_per_unit_ = 1;
  Clock::time_point first_done_;  // when the first unit of this phase finished
  Clock::time_point last_line_;
  int64_t since_line_ = 0;
};

}  // namespace psaq::job
