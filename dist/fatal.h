// Process-wide fatal-error policy: any fatal error on any rank aborts the whole MPI job, so peers
// never hang in a collective waiting for a dead rank.
#pragma once

#include <string>

namespace psaq::dist {

// Installs a glog failure function that, after glog has printed the fatal message and stack,
// calls MPI_Abort(MPI_COMM_WORLD, 1) when MPI is initialised and not finalised (else abort()).
// Call once, early in main, after google::InitGoogleLogging. Idempotent.
void InstallAbortOnFatal();

// Aborts the job with `reason` printed once to stderr with the rank prefix: MPI_Abort when MPI is
// initialised, else exit(code). For the top-level catch in mains. Never returns.
[[noreturn]] void AbortJob(const std::string& reason, int code = 1);

// "[rank r/n] " when MPI is initialised and the world has more than one rank, else "".
std::string RankPrefix();

}  // namespace psaq::dist
