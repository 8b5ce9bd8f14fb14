// Where a job's time went, and report.json.
//
// PhaseTimers accumulate wall time per phase on one rank. WriteRunReport (collective) gathers
// every rank's timers and counters with one AllGather and rank 0 writes report.json atomically:
//   {"status": "complete" | "preempted", "psaq_version", "created", "world_size", "backend",
//    "options": {...}, "outputs": {...}, "metrics": {...} (the caller's),
//    "wall_seconds": max over ranks,
//    "phases": {"<phase>": {"seconds": rank 0's, "max_seconds": max over ranks}, ...},
//    "ranks": [{"rank", "wall_seconds", "work": samples·iterations, "throughput": work/s,
//               "comm_seconds", "grad_sync_seconds", "grad_sync_bytes"}, ...],
//    "communication": {"seconds": max over ranks of comm_seconds, "share": that / wall_seconds,
//                      "grad_sync_seconds": max over ranks}}
// A report with "status": "complete" is written last by the job, so its presence marks a
// finished output directory.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "dist/grad_sync.h"

namespace psaq::job {

// The phases every report lists, in order (a rank that never entered one reports 0).
const std::vector<std::string>& ReportPhases();
// "init", "sampling" (a detector job's noise/real/files samples), "v1_generation", "v2_warmup", "v2_sample_steps", "v2_student_steps", "calibration",
// "recalibration", "checkpointing", "sample_io", "export".

class PhaseTimers {
 public:
  // Adds seconds to `phase`. REQUIRES: phase is one of ReportPhases() (TORCH_CHECK).
  void Add(const std::string& phase, double seconds);
  double seconds(const std::string& phase) const;
  const std::map<std::string, double>& all() const { return seconds_; }

  // Adds the scope's wall time to a phase.
  class Scope {
   public:
    Scope(PhaseTimers& timers, std::string phase);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    PhaseTimers& timers_;
    std::string phase_;
    double start_;
  };

 private:
  std::map<std::string, double> seconds_;
};

// Monotonic seconds (steady clock), for differences.
double NowSeconds();

struct RunReportInput {
  std::string status = "complete";
  nlohmann::json options = nlohmann::json::object();
  nlohmann::json outputs = nlohmann::json::object();
  nlohmann::json metrics = nlohmann::json::object();
  PhaseTimers timers;             // this rank's
  double wall_seconds = 0;        // this rank's, since the job started
  double work = 0;                // samples·iterations this rank processed
  double comm_seconds = 0;        // Communicator::seconds_in_collectives()
  dist::GradSyncStats grad_sync;  // summed over the run
};

// Collective. Builds the report (identical on every rank; returned) and, when `path` is
// non-empty, rank 0 writes it atomically before any rank returns. Throws std::runtime_error naming
// the path on I/O error.
nlohmann::json WriteRunReport(dist::Communicator& comm, const std::string& path,
                              const RunReportInput& input, const at::Device& device);

}  // namespace psaq::job
