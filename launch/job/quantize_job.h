// The distributed jobs behind `psaq generate` (samples only) and `psaq quantize` (samples, then a
// calibrated, exported quantized model). The CLI's mains parse flags into QuantizeJobOptions
// (launch/job/job_options.h), set up MPI and the device, and call one of these.
//
// Steps of RunQuantizeJob, every rank:
//   1. check output_dir (below), load the teacher (float, eval, frozen) onto options.device;
//   2. produce this rank's calibration samples, global indices dist::ShardRange(N, world, rank):
//        v1     V1 per batch of batch_size (launch/job/v1_run.h), checkpointed
//        v2     R-V2 rounds over the rank's batches with a quantized student (launch/job/v2_run.h),
//               checkpointed; the student IS the model exported in step 4
//        noise  N(0, 1) per sample; real: seeded choice of training images (with
//               real.on_bad_image = kSkip, undecodable ones replaced and counted in report.json's
//               metrics.real_images_skipped); files: an earlier run's samples
//               (launch/job/calibration_sources.h)
//      On preemption (should_stop true on any rank at a boundary) every rank has written the
//      checkpoint: report.json gets "status": "preempted" and the job returns kPreempted; run
//      again with resume = true to continue.
//   3. write the rank's shard samples/shard-<r>-of-<n>.safetensors (not for "files");
//   4. calibrate: one pass of the rank's samples through the float model, observers merged across
//      ranks (quant/calibration.h); for v2 the student keeps the ranges its last round computed
//      (re-calibrated on the final samples when recalibrate_each_round);
//   5. measure the quantized model against the float teacher on the samples (output SQNR, top-1
//      agreement; summed over ranks), rank 0 exports model.safetensors + model.manifest.json
//      (quant/export.h, each written atomically);
//   6. report.json (launch/job/run_report.h) with "status": "complete", written LAST: its presence marks
//      a finished output directory. Then psaq's checkpoint files are removed.
// RunGenerateJob stops after step 3 (its report has no model); it takes v1, v2, noise or real.
//
// Output directory:
//   <output_dir>/samples/shard-<r>-of-<n>.safetensors   the samples (launch/job/sample_store.h)
//   <output_dir>/checkpoint/...                         while a v1/v2 run is unfinished
//                                                       (launch/job/checkpoint.h)
//   <output_dir>/model.safetensors, model.manifest.json the export (quantize only)
//   <output_dir>/report.json                            options, phase times, throughput,
//                                                       communication share, metrics, status
//   <output_dir>/.psaq.lock                             while the job runs (output_dir_lock.h)
// Ownership and refusals (launch/job/output_dir.h PrepareOutputDir; std::runtime_error naming
// the directory, thrown identically on every rank before any work): a path inside another run's
// directory; a directory another job holds (rank 0 holds its lock for the whole job, so a second
// job fails at once naming the holder; a killed job's lock is taken over with a warning); a
// finished run (report.json with status complete) unless overwrite; a checkpoint of an
// unfinished run unless resume or overwrite; entries psaq did not write, any of them with
// overwrite (which removes psaq's own entries only: samples/, checkpoint/, model.*, report.json,
// recognised by name and content), and those a run would replace without it. overwrite then
// starts afresh, even when resume is set. Nothing is removed before the job's other inputs are
// checked (the evaluation set, --sample_files not inside the directory with overwrite, the
// teacher, the samples' memory; ClearOutputDir). Strings that are not UTF-8 (output_dir, model,
// ...) are refused earlier still, by ValidateJobOptions.
//
// Collective: every rank calls it with the same options. Errors on one rank (a bad file, a
// failed write) throw there; the CLI's top-level handler aborts the job so peers do not hang.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "launch/job/job_context.h"
#include "launch/job/job_options.h"

namespace psaq::job {

struct JobResult {
  JobStatus status = JobStatus::kComplete;
  nlohmann::json report;                  // what report.json holds (every rank)
  std::string model_path;                 // the export (quantize, complete), else ""
  std::vector<std::string> sample_files;  // all ranks' shards written by this job
};

JobResult RunQuantizeJob(const QuantizeJobOptions& options, dist::Communicator& comm);
JobResult RunGenerateJob(const QuantizeJobOptions& options, dist::Communicator& comm);

}  // namespace psaq::job
