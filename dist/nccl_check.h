// Fatal checks for NCCL and CUDA runtime return codes (the companion of PSAQ_MPI_CHECK in
// dist/check.h). Only with PSAQ_WITH_NCCL (the CUDA toolkit and NCCL found at configure time);
// without it this header declares nothing.
//
//   PSAQ_CUDA_CHECK(cudaSetDevice(device));
//   PSAQ_NCCL_CHECK(ncclCommInitRank(&comm, size, id, rank));
//
// A failure logs the call, the library's error string (for NCCL also ncclGetLastError's detail)
// and the rank, then LOG(FATAL) -> glog failure function -> MPI_Abort (dist/fatal.h).
// For a failing *communicator* (an asynchronous error or a hang) use NcclCommunicator's own
// handling, which aborts the communicator first (dist/nccl_communicator.h).
#pragma once

#ifdef PSAQ_WITH_NCCL

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <string>

#include "dist/fatal.h"
#include "dist/logging.h"

#define PSAQ_CUDA_CHECK(call)                                              \
  do {                                                                     \
    const cudaError_t psaq_cuda_rc_ = (call);                              \
    if (psaq_cuda_rc_ != cudaSuccess) {                                    \
      LOG(FATAL) << ::psaq::dist::RankPrefix() << #call                    \
                 << " failed: " << cudaGetErrorName(psaq_cuda_rc_) << ": " \
                 << cudaGetErrorString(psaq_cuda_rc_);                     \
    }                                                                      \
  } while (0)

#define PSAQ_NCCL_CHECK(call)                                                     \
  do {                                                                            \
    const ncclResult_t psaq_nccl_rc_ = (call);                                    \
    if (psaq_nccl_rc_ != ncclSuccess) {                                           \
      const char* psaq_nccl_detail_ = ncclGetLastError(nullptr);                  \
      LOG(FATAL) << ::psaq::dist::RankPrefix() << #call                           \
                 << " failed: " << ncclGetErrorString(psaq_nccl_rc_)              \
                 << (psaq_nccl_detail_ != nullptr && psaq_nccl_detail_[0] != '\0' \
                         ? std::string(" (") + psaq_nccl_detail_ + ")"            \
                         : std::string());                                        \
    }                                                                             \
  } while (0)

#endif  // PSAQ_WITH_NCCL
