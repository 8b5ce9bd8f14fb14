#include "launch/job/run_report.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include "dist/base/atomic_file.h"
#include "dist/base/utc_time.h"
#include "dist/collective_util.h"

namespace psaq::job {

const std::vector<std::string>& ReportPhases() {
  static const std::vector<std::string> phases = {
      "init",        "sampling",      "v1_generation", "v2_warmup",  "v2_sample_steps",
      "v2_student_steps", "calibration", "recalibration", "checkpointing", "sample_io",
      "export"};
  return phases;
}

void PhaseTimers::Add(const std::string& phase, double seconds) {
  const auto& phases = ReportPhases();
  TORCH_CHECK(std::find(phases.begin(), phases.end(), phase) != phases.end(),
              "PhaseTimers: unknown phase '", phase, "'");
  seconds_[phase] += seconds;
}

double PhaseTimers::seconds(const std::string& phase) const {
  auto it = seconds_.find(phase);
  return it == seconds_.end() ? 0.0 : it->second;
}

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

PhaseTimers::Scope::Scope(PhaseTimers& timers, std::string phase)
    : timers_(timers), phase_(std::move(phase)), start_(NowSeconds()) {}

PhaseTimers::Scope::~Scope() { timers_.Add(phase_, NowSeconds() - start_); }

nlohmann::json WriteRunReport(dist::Communicator& comm, const std::string& path,
                              const RunReportInput& input, const at::Device& device) {
  const std::vector<std::string>& phases = ReportPhases();
  // Per rank: wall, work, comm, grad-sync seconds, grad-sync bytes, the time of day, then one
  // value per phase. "created" is rank 0's time of day: each rank reading its own clock made the
  // reports differ when a second ticked between the ranks' reads.
  std::vector<double> mine = {input.wall_seconds, input.work, input.comm_seconds,
                              input.grad_sync.seconds, static_cast<double>(input.grad_sync.bytes),
                              static_cast<double>(std::time(nullptr))};
  constexpr size_t kFixed = 6;
  for (const std::string& phase : phases) mine.push_back(input.timers.seconds(phase));
  const size_t n = mine.size();
  const std::vector<double> all = dist::GatherDoubles(comm, mine, dist::CollectiveDevice(comm, device));

  nlohmann::json report = {{"status", input.status},
                           {"psaq_version", PSAQ_VERSION},
                           {"created", base::UtcString(static_cast<std::time_t>(all[5]))},
                           {"world_size", comm.size()},
                           {"backend", comm.backend()},
                           {"options", input.options},
                           {"outputs", input.outputs},
                           {"metrics", input.metrics}};
  double wall = 0, comm_max = 0, sync_max = 0;
  nlohmann::json ranks = nlohmann::json::array();
  for (int r = 0; r < comm.size(); ++r) {
    const double* v = all.data() + static_cast<size_t>(r) * n;
    wall = std::max(wall, v[0]);
    comm_max = std::max(comm_max, v[2]);
    sync_max = std::max(sync_max, v[3]);
    ranks.push_back({{"rank", r},
                     {"wall_seconds", v[0]},
                     {"work", v[1]},
                     {"throughput", v[0] > 0 ? v[1] / v[0] : 0.0},
                     {"comm_seconds", v[2]},
                     {"grad_sync_seconds", v[3]},
                     {"grad_sync_bytes", v[4]}});
  }
  nlohmann::json phase_json = nlohmann::json::object();
  for (size_t p = 0; p < phases.size(); ++p) {
    double max = 0;
    for (int r = 0; r < comm.size(); ++r)
      max = std::max(max, all[static_cast<size_t>(r) * n + kFixed + p]);
    phase_json[phases[p]] = {{"seconds", all[kFixed + p]}, {"max_seconds", max}};
  }
  report["wall_seconds"] = wall;
  report["phases"] = phase_json;
  report["ranks"] = ranks;
  report["communication"] = {{"seconds", comm_max},
                             {"share", wall > 0 ? comm_max / wall : 0.0},
                             {"grad_sync_seconds", sync_max}};
  if (!path.empty()) {
    if (comm.rank() == 0) base::WriteFileAtomic(path, report.dump(2) + "\n");
    comm.Barrier();  // on return, the file exists for every rank
  }
  return report;
}

}  // namespace psaq::job
