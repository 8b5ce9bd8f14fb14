// The job's output directory: file names and the start-of-job checks (launch/job/quantize_job.h).
#pragma once

#include <string>

#include "dist/communicator.h"

namespace psaq::job {

std::string SamplesDir(const std::string& output_dir);     // <dir>/samples
std::string CheckpointDir(const std::string& output_dir);  // <dir>/checkpoint
std::string ModelPath(const std::string& output_dir);      // <dir>/model.safetensors
std::string ReportPath(const std::string& output_dir);     // <dir>/report.json

// True when <dir>/report.json exists and says "status": "complete".
bool IsFinishedRun(const std::string& output_dir);

// Collective. Applies the refusals of launch/job/quantize_job.h (every rank checks before anyone
// changes anything, so all throw the same error), then rank 0 removes psaq's entries when
// `overwrite`, or a stale (non-complete) report.json otherwise, and creates the directory.
// Returns true when a checkpoint is there to resume from.
bool PrepareOutputDir(const std::string& output_dir, bool resume, bool overwrite,
                      dist::Communicator& comm);

}  // namespace psaq::job
