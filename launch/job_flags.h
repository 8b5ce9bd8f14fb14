// The flags of `psaq generate` and `psaq quantize` (launch/job_flags.cc, one table row each) and
// what is derived from them: each subcommand's flag list, the cross-flag checks and the job's
// options.
#pragma once

#include <string>
#include <vector>

#include "launch/job/job_options.h"

namespace psaq::launch {

enum class JobKind { kGenerate, kQuantize };

// The flags the subcommand takes, by name, in the table's order (its line in
// launch/subcommands.cc).
std::vector<std::string> JobFlagNames(JobKind kind);

// Throws UsageError for inconsistent flags: missing --model/--output_dir, --resume with
// --overwrite, --method=files without --sample_files or with generate, --method=real without
// --dataset, a flag set for a run it does not apply to ("--v2_rounds applies to --method=v2
// only"), V1/V2 warm-ups longer than their schedules, several --jitter_limits with V2.
void CheckJobFlags(JobKind kind);

// The job's options from the flags; `device` is the one the process picked ("cpu", "cuda:1").
// Throws UsageError for a malformed --jitter_limits.
job::QuantizeJobOptions JobOptionsFromFlags(JobKind kind, const std::string& device);

}  // namespace psaq::launch
