// What the job's generation drivers (launch/job/v1_run.h, launch/job/v2_run.h) share: the communicator, the
// device, checkpointing, preemption, timers, progress and the test hook.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dist/communicator.h"
#include "launch/job/checkpoint.h"
#include "launch/job/progress.h"
#include "launch/job/run_report.h"

namespace psaq::job {

enum class JobStatus { kComplete, kPreempted };
// "complete" / "preempted".
std::string JobStatusName(JobStatus status);

struct JobContext {
  dist::Communicator& comm;
  at::Device device;  // of the models and samples
  // Null: no checkpoints. Else written at the drivers' boundaries.
  CheckpointStore* checkpoint = nullptr;
  // V1: steps between checkpoints within a batch (0 = only at batch ends).
  int64_t checkpoint_every = 0;
  // The checkpoint to resume from (read by the job), if any.
  std::optional<LoadedCheckpoint> resume;
  // Local preemption predicate (null = never); combined over ranks at boundaries.
  std::function<bool()> should_stop;
  PhaseTimers& timers;
  ProgressReporter& progress;
  // Test hook after every generation step (QuantizeJobOptions::on_step).
  std::function<void(const std::string& phase, int64_t step)> on_step;

  // Collective. True on every rank when should_stop() is true on any rank.
  bool StopRequested();
};

}  // namespace psaq::job
