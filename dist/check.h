// Check macros for foreign return codes, wrapped at the call site. A failing MPI, NCCL or CUDA
// call is fatal: the message names the call, the library's error string and the rank, and the
// glog failure function (dist/fatal.h) turns it into MPI_Abort so no peer hangs.
//
//   PSAQ_MPI_CHECK(MPI_Allreduce(...));
//   PSAQ_NCCL_CHECK(ncclAllReduce(...));   // dist/nccl_check.h, only when PSAQ_NCCL_ENABLED
//   PSAQ_CUDA_CHECK(cudaStreamSynchronize(s));
#pragma once

#include <mpi.h>

#include <string>

#include "dist/fatal.h"
#include "dist/logging.h"

namespace psaq::dist {

// The text MPI gives for an error code.
inline std::string MpiErrorString(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, len);
}

}  // namespace psaq::dist

#define PSAQ_MPI_CHECK(call)                                                         \
  do {                                                                               \
    const int psaq_mpi_rc_ = (call);                                                 \
    if (psaq_mpi_rc_ != MPI_SUCCESS) {                                               \
      LOG(FATAL) << ::psaq::dist::RankPrefix() << #call << " failed: "               \
                 << ::psaq::dist::MpiErrorString(psaq_mpi_rc_);                      \
    }                                                                                \
  } while (0)
