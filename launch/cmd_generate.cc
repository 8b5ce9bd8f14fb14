// psaq generate: calibration samples only (V1, V2, noise or real), one shard per rank, written to
// --output_dir/samples for a later `psaq quantize --method=files`. Its flags are quantize's
// (launch/job_flags.cc, those that apply to generation); launch/job_command.h runs both.
#include "launch/job_command.h"
#include "launch/process.h"

namespace psaq::launch {

void CheckGenerateFlags() { CheckJobFlags(JobKind::kGenerate); }

int RunGenerate(ProcessContext& process) { return RunJobCommand(process, JobKind::kGenerate); }

}  // namespace psaq::launch
