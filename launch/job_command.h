// What `psaq generate` and `psaq quantize` share: their flags (defined in launch/cmd_quantize.cc)
// turned into gen::QuantizeJobOptions, the cross-flag checks, and the run itself.
//
// RunJobCommand, on every rank: installs the stop-signal handlers (launch/stop_signal.h), runs
// the job (gen::RunGenerateJob or gen::RunQuantizeJob) with should_stop = StopRequested, then
//   - preempted: logs where the checkpoint is and returns kPreemptedExitCode (75); running the
//     same command again with --resume continues;
//   - complete: with --eval_dataset (quantize), marks report.json's "evaluation" as
//     {"status": "running", "dataset"}, evaluates the float teacher and the exported model on it
//     (distributed), replaces that with {"status": "complete", "dataset", "float", "quantized"},
//     and rank 0 prints the summary table (method, bits, samples, ranks, phase times, output SQNR,
//     top-1s, paths). A run killed during the evaluation keeps the "running" mark.
#pragma once

#include "gen/job_options.h"
#include "launch/process.h"

namespace psaq::launch {

enum class JobKind { kGenerate, kQuantize };

// Throws UsageError for inconsistent flags (missing --model/--output_dir, --method=files without
// --sample_files or with generate, --method=real without --dataset, --resume with --overwrite,
// V1/V2 knobs given for another method, ...).
void CheckJobFlags(JobKind kind);

// The job's options from the flags (device from `process`).
gen::QuantizeJobOptions JobOptionsFromFlags(const ProcessContext& process);

// Runs the job; returns the exit status (0, or kPreemptedExitCode).
int RunJobCommand(ProcessContext& process, JobKind kind);

}  // namespace psaq::launch
