// V1 generation of this rank's shard inside the distributed job, with checkpoints and preemption.
//
// Every rank walks the same schedule of "slots" (slot s = each rank's s-th batch; ranks with
// fewer batches idle through the later slots) and of steps within a slot, so the boundaries
// where ranks meet coincide: every checkpoint_every steps and at every batch end. At each
// boundary the stop predicate is combined over ranks (one all-reduce MAX), and a checkpoint is
// written when due or when stopping. A completed batch is written once as an immutable blob
// ("v1-batch-<first index>"); the checkpoint's rank file holds only the batch in progress.
// Checkpoint progress: {"slot": s, "iteration": i} (i steps of slot s done).
//
// Batches are gen/v1_generator.h's, so the samples of global index i do not depend on the world
// size provided the batches are the same: i.e. when every shard boundary falls on a multiple of
// the batch size (num_samples a multiple of world_size * batch_size suffices).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "launch/job/job_context.h"
#include "gen/v1_generator.h"
#include "model/vision_model.h"

namespace psaq::job {

struct ShardSamples {
  at::Tensor images;    // float32 [n, C, H, W] on the job's device (n may be 0)
  at::Tensor indices;   // int64 [n] on the CPU: the global sample indices
  int64_t skipped = 0;  // real images that did not decode and were replaced (RealShard, kSkip)
};

struct V1RunResult {
  JobStatus status = JobStatus::kComplete;
  ShardSamples samples;  // complete only when status == kComplete
  double work = 0;       // samples·steps taken on this rank in this run
};

// Collective. Resumes from ctx.resume when its phase is "v1". Throws std::runtime_error naming
// the file when a checkpoint's batch state or blob is missing or mismatched.
V1RunResult RunV1Shard(model::VisionModel& teacher, const gen::V1Options& options, uint64_t seed,
                       int64_t num_samples, JobContext& ctx);

}  // namespace psaq::job
