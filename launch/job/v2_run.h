// R-V2 over this rank's shard inside the distributed job (gen/v2_rounds.h), with checkpoints at
// the end of the warm-up/initial calibration and of every round, and preemption at the same
// boundaries (stop predicate combined over ranks with one all-reduce MAX). A V2 checkpoint's
// rank file holds the rank's batches (X, image Adam states, step counters); its shared file,
// written once by rank 0, the student (latent parameters, activation ranges), the student's Adam
// state and the round counter, which every rank holds identically.
// Checkpoint progress: {"completed_rounds": r} (0 = warm-up and calibration done).
#pragma once

#include "gen/v2_models.h"
#include "gen/v2_options.h"
#include "gen/v2_rounds.h"
#include "launch/job/job_context.h"
#include "launch/job/v1_run.h"
#include "model/vision_model.h"
#include "quant/quantized_model.h"

namespace psaq::job {

struct V2RunResult {
  JobStatus status = JobStatus::kComplete;
  ShardSamples samples;    // the final X of this rank (when complete)
  double work = 0;         // samples·steps (image steps + student sample-steps) in this run
  gen::V2Timings timings;  // of this run
};

// Collective. `student`: a QuantizedModel of a copy of the teacher (the job exports it).
// Resumes from ctx.resume when its phase is "v2".
V2RunResult RunV2Shard(model::VisionModel& teacher, quant::QuantizedModel& student,
                       const gen::V2Options& options, uint64_t seed, int64_t num_samples,
                       JobContext& ctx);
// The same on any teacher-student pair (a detector: gen/detector_v2_models.h); the samples are
// models.image_config()'s size.
V2RunResult RunV2Shard(gen::V2Models& models, const gen::V2Options& options, uint64_t seed,
                       int64_t num_samples, JobContext& ctx);

}  // namespace psaq::job
