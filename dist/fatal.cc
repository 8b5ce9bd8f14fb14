#include "dist/fatal.h"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>

#include "dist/logging.h"

namespace psaq::dist {
namespace {

bool MpiActive() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

// noreturn in the GNU spelling, which (unlike [[noreturn]]) is part of the function's type: glog's
// logging_fail_func_t carries it, and clang refuses a pointer to a function without it.
__attribute__((noreturn)) void FailureFunction() {
  if (MpiActive()) MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();
}

}  // namespace

void InstallAbortOnFatal() { google::InstallFailureFunction(&FailureFunction); }

std::string RankPrefix() {
  if (!MpiActive()) return "";
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size == 1) return "";
  return "[rank " + std::to_string(rank) + "/" + std::to_string(size) + "] ";
}

void AbortJob(const std::string& reason, int code) {
  std::fprintf(stderr, "%serror: %s\n", RankPrefix().c_str(), reason.c_str());
  std::fflush(stderr);
  if (MpiActive()) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

}  // namespace psaq::dist
