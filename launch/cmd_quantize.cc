// psaq quantize: calibration samples (generated V1/V2, noise, real images, or an earlier run's
// files) -> calibrated quantized model -> export [-> top-1 on --eval_dataset], across the ranks
// (launch/job/quantize_job.h). Its flags are launch/job_flags.cc's table.
#include "launch/job_command.h"
#include "launch/process.h"

namespace psaq::launch {

void CheckQuantizeFlags() { CheckJobFlags(JobKind::kQuantize); }

int RunQuantize(ProcessContext& process) { return RunJobCommand(process, JobKind::kQuantize); }

}  // namespace psaq::launch
