// What `psaq generate` and `psaq quantize` share: the run itself, from the flags
// (launch/job_flags.h) to the summary.
//
// RunJobCommand, on every rank: installs the stop-signal handlers (launch/stop_signal.h), runs
// the job (job::RunGenerateJob or job::RunQuantizeJob, which also evaluates on --eval_dataset
// and writes report.json) with should_stop = StopRequested, then
//   - preempted: logs where the checkpoint is and returns kPreemptedExitCode (75); running the
//     same command again with --resume continues;
//   - complete: rank 0 prints the summary table (method, bits, samples, ranks, phase times,
//     output SQNR, top-1s, paths) and it returns 0.
#pragma once

#include "launch/job_flags.h"
#include "launch/process.h"

namespace psaq::launch {

// Runs the job; returns the exit status (0, or kPreemptedExitCode).
int RunJobCommand(ProcessContext& process, JobKind kind);

}  // namespace psaq::launch
