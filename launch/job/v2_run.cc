#include "launch/job/v2_run.h"

#include <ATen/ATen.h>

#include <stdexcept>
#include <string>

#include "dist/partition.h"

namespace psaq::job {
namespace {

// Writes a checkpoint when due or stopping; returns true when the job must stop.
bool Boundary(gen::V2Rounds& rounds, JobContext& ctx) {
  const bool stop = ctx.StopRequested();
  if (ctx.checkpoint != nullptr) {
    PhaseTimers::Scope timer(ctx.timers, "checkpointing");
    CheckpointContent content;
    content.phase = "v2";
    content.progress = {{"completed_rounds", rounds.completed_rounds()}};
    content.rank_tensors = rounds.ExportRankState();
    content.shared_tensors = rounds.ExportSharedState();
    ctx.checkpoint->Write(content);
  }
  return stop;
}

}  // namespace

V2RunResult RunV2Shard(model::VisionModel& teacher, quant::QuantizedModel& student,
                       const gen::V2Options& options, uint64_t seed, int64_t num_samples,
                       JobContext& ctx) {
  gen::ClassifierV2Models models(teacher, student, options.discrepancy,
                                 options.weights.entropy != 0);
  return RunV2Shard(models, options, seed, num_samples, ctx);
}

V2RunResult RunV2Shard(gen::V2Models& models, const gen::V2Options& options, uint64_t seed,
                       int64_t num_samples, JobContext& ctx) {
  const auto batches =
      dist::ShardBatches(num_samples, ctx.comm.size(), ctx.comm.rank(), options.batch_size);
  gen::V2Rounds rounds(models, options, seed, ctx.comm, batches, num_samples);
  int64_t local = 0;
  for (const auto& b : batches) local += b.second;
  const int64_t per_round =
      static_cast<int64_t>(batches.size()) * options.sample_iterations +
      (options.student_update == gen::StudentUpdate::kLatentWeights ? options.student_iterations
                                                                    : 0);
  const int64_t total =
      static_cast<int64_t>(batches.size()) * options.warmup_iterations + options.rounds * per_round;
  int64_t step_count = 0;
  rounds.set_progress_callback([&](const gen::V2Progress& p) {
    std::string where = p.phase == "student"
                            ? "round " + std::to_string(p.round) + " student"
                            : (p.round > 0 ? "round " + std::to_string(p.round) + " " : "") +
                                  p.phase + " batch@" + std::to_string(p.batch_first_index);
    where += " iter " + std::to_string(p.iteration) + "/" + std::to_string(p.total_iterations);
    ctx.progress.Update(where, &p.loss);
    if (ctx.on_step) ctx.on_step(p.phase, ++step_count);
  });

  V2RunResult result;
  auto finish = [&](JobStatus status) {
    const gen::V2Timings& t = rounds.timings();
    result.status = status;
    result.timings = t;
    result.work = static_cast<double>(t.image_sample_steps + t.student_sample_steps);
    ctx.timers.Add("v2_warmup", t.warmup_seconds);
    ctx.timers.Add("v2_sample_steps", t.sample_seconds);
    ctx.timers.Add("v2_student_steps", t.student_seconds);
    ctx.timers.Add("recalibration", t.calibration_seconds);
    return result;
  };

  int64_t done_units = 0;
  if (ctx.resume && ctx.resume->phase == "v2") {
    rounds.ImportState(ctx.resume->shared_tensors, ctx.resume->rank_tensors, ctx.resume->rank_file);
    done_units = static_cast<int64_t>(batches.size()) * options.warmup_iterations +
                 rounds.completed_rounds() * per_round;
  }
  ctx.progress.BeginPhase("v2", total, static_cast<double>(options.batch_size), done_units);
  if (rounds.completed_rounds() < 0) {
    rounds.WarmupAndCalibrate();
    if (Boundary(rounds, ctx)) return finish(JobStatus::kPreempted);
  }
  while (!rounds.Done()) {
    rounds.RunRound();
    if (Boundary(rounds, ctx)) return finish(JobStatus::kPreempted);
  }
  std::vector<at::Tensor> images;
  for (const gen::ImageBatch& b : rounds.batches()) images.push_back(b.images.detach());
  const int64_t c = models.image_config().in_chans(), s = models.image_config().img_size();
  result.samples.images =
      images.empty() ? at::empty({0, c, s, s}, at::TensorOptions(ctx.device)) : at::cat(images);
  const int64_t first = batches.empty() ? 0 : batches.front().first;
  result.samples.indices = at::arange(first, first + local);
  return finish(JobStatus::kComplete);
}

}  // namespace psaq::job
