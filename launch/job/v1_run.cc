#include "launch/job/v1_run.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "dist/partition.h"

namespace psaq::job {
namespace {

std::string BlobName(int64_t first_index) { return "v1-batch-" + std::to_string(first_index); }

int64_t MaxBatches(int64_t num_samples, int world, int64_t batch_size) {
  size_t most = 0;
  for (int r = 0; r < world; ++r) {
    most = std::max(most, dist::ShardBatches(num_samples, world, r, batch_size).size());
  }
  return static_cast<int64_t>(most);
}

}  // namespace

V1RunResult RunV1Shard(model::VisionModel& teacher, const gen::V1Options& options, uint64_t seed,
                       int64_t num_samples, JobContext& ctx) {
  const double start = NowSeconds();
  const double checkpoint_start = ctx.timers.seconds("checkpointing");
  gen::V1Generator gen(teacher, options, seed);
  const auto batches =
      dist::ShardBatches(num_samples, ctx.comm.size(), ctx.comm.rank(), options.batch_size);
  const int64_t slots = MaxBatches(num_samples, ctx.comm.size(), options.batch_size);
  const int64_t steps = gen.total_iterations();
  const int64_t n_batches = static_cast<int64_t>(batches.size());
  std::vector<at::Tensor> done(batches.size());

  int64_t start_slot = 0, start_it = 0;
  if (ctx.resume && ctx.resume->phase == "v1") {
    start_slot = ctx.resume->progress.at("slot").get<int64_t>();
    start_it = ctx.resume->progress.at("iteration").get<int64_t>();
    if (start_slot < 0 || start_slot > slots || start_it < 0 || start_it >= steps) {
      throw std::runtime_error(ctx.resume->rank_file + ": checkpoint progress (slot " +
                               std::to_string(start_slot) + ", iteration " +
                               std::to_string(start_it) + ") does not fit this run");
    }
    for (int64_t k = 0; k < std::min(start_slot, n_batches); ++k) {
      const auto blob = ctx.checkpoint->ReadBlob(BlobName(batches[k].first));
      auto it = blob.find("images");
      if (it == blob.end() || it->second.size(0) != batches[k].second) {
        throw std::runtime_error(ctx.checkpoint->dir() + ": blob " + BlobName(batches[k].first) +
                                 " does not hold the batch's images");
      }
      done[static_cast<size_t>(k)] = it->second.to(ctx.device);
    }
  }
  ctx.progress.BeginPhase(
      "v1", n_batches * steps, static_cast<double>(options.batch_size),
      std::min(start_slot, n_batches) * steps + (start_slot < n_batches ? start_it : 0));

  V1RunResult result;
  int64_t step_count = 0;
  for (int64_t s = start_slot; s < slots; ++s) {
    const bool has = s < n_batches;
    gen::ImageBatch batch;
    if (has) {
      batch = gen.InitBatch(batches[s].first, batches[s].second);
      if (s == start_slot && start_it > 0) {
        gen::ImportImageBatch(batch, ctx.resume->rank_tensors, "current.", ctx.resume->rank_file);
        if (batch.iteration != start_it) {
          throw std::runtime_error(ctx.resume->rank_file + ": batch at step " +
                                   std::to_string(batch.iteration) + ", checkpoint says " +
                                   std::to_string(start_it));
        }
      }
    }
    for (int64_t it = (s == start_slot ? start_it : 0); it < steps; ++it) {
      if (has) {
        const gen::V1Progress p = gen.Step(batch);
        result.work += static_cast<double>(batch.size());
        ctx.progress.Update("batch " + std::to_string(s + 1) + "/" + std::to_string(n_batches) +
                                " iter " + std::to_string(p.iteration) + "/" +
                                std::to_string(steps),
                            &p.loss);
        if (ctx.on_step) ctx.on_step("v1", ++step_count);
      }
      const bool batch_end = it + 1 == steps;
      const bool due =
          ctx.checkpoint != nullptr &&
          (batch_end || (ctx.checkpoint_every > 0 && (it + 1) % ctx.checkpoint_every == 0));
      if (!due && !batch_end) continue;
      if (batch_end && has) {
        done[static_cast<size_t>(s)] = batch.images.detach();
        if (ctx.checkpoint != nullptr) {
          PhaseTimers::Scope timer(ctx.timers, "checkpointing");
          ctx.checkpoint->WriteBlob(BlobName(batch.first_index),
                                    {{"images", gen::CpuSnapshot(batch.images)}});
        }
      }
      const bool stop = ctx.StopRequested();
      if (ctx.checkpoint != nullptr && (due || stop)) {
        PhaseTimers::Scope timer(ctx.timers, "checkpointing");
        CheckpointContent content;
        content.phase = "v1";
        content.progress = batch_end ? nlohmann::json{{"slot", s + 1}, {"iteration", 0}}
                                     : nlohmann::json{{"slot", s}, {"iteration", it + 1}};
        if (has && !batch_end) content.rank_tensors = gen::ExportImageBatch(batch, "current.");
        ctx.checkpoint->Write(content);
      }
      if (stop) {
        result.status = JobStatus::kPreempted;
        ctx.timers.Add(
            "v1_generation",
            NowSeconds() - start - (ctx.timers.seconds("checkpointing") - checkpoint_start));
        return result;
      }
    }
  }
  const int64_t c = teacher.config().in_chans(), size = teacher.config().img_size();
  result.samples.images =
      done.empty() ? at::empty({0, c, size, size}, at::TensorOptions(ctx.device)) : at::cat(done);
  const int64_t first = batches.empty() ? 0 : batches.front().first;
  result.samples.indices = at::arange(first, first + result.samples.images.size(0));
  ctx.timers.Add("v1_generation",
                 NowSeconds() - start - (ctx.timers.seconds("checkpointing") - checkpoint_start));
  return result;
}

}  // namespace psaq::job
