// What the job's generation drivers (gen/v1_run.h, gen/v2_run.h) share: the communicator, the
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
#include "gen/checkpoint.h"
#include "gen/progress.h"
#include "gen/run_report.h"

namespace psaq::gen {

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

// This rank's generation batches: dist::ShardRange(num_samples, world, rank) cut into
// (first global index, count) chunks of batch_size (the last may be smaller).
std::vector<std::pair<int64_t, int64_t>> ShardBatches(int64_t num_samples, int world, int rank,
                                                      int64_t batch_size);

}  // namespace psaq::gen
