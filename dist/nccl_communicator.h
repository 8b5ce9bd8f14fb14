// The NCCL backend of Communicator: collectives on CUDA device memory.
//
// Built only with PSAQ_WITH_NCCL (defined on psaq_dist's users when CMake found the CUDA toolkit
// and NCCL; see cmake/PsaqCuda.cmake). Without it this header declares only kNcclCompiled, so it
// can be included unconditionally:
//
//   #include "dist/nccl_communicator.h"
//   #ifdef PSAQ_WITH_NCCL
//     NcclCommunicatorOptions o;
//     o.device = SelectDevice(local_rank, device_count);    // dist/local_rank.h
//     NcclCommunicator comm(o);                             // collective over MPI_COMM_WORLD
//   #endif
//
// It needs no CUDA-enabled LibTorch: the at::Tensor methods only check t.is_cuda() and use
// t.data_ptr(), and the *Raw methods take device pointers (cudaMalloc'd buffers).
//
// Setup follows nccl-tests: rank 0 of the bootstrap MPI communicator creates the ncclUniqueId,
// MPI_Bcast hands it to every rank, each rank selects its device and calls ncclCommInitRank.
//
// Completion and failure: every operation is enqueued on the stream and then waited for by
// polling cudaStreamQuery and ncclCommGetAsyncError (so methods return with the result in place,
// like the MPI backend). On an asynchronous NCCL error, a CUDA error, or when the operation has
// not completed after `timeout_seconds` (a dead peer, or ranks calling collectives in different
// orders), the communicator is aborted with ncclCommAbort -- a failed communicator is never
// ncclCommDestroy'ed, which can hang -- and the process fails fatally with the NCCL error string
// and the rank (LOG(FATAL) -> MPI_Abort, dist/fatal.h). A clean shutdown calls ncclCommDestroy.
// ncclCommInitRank itself is blocking and has no timeout.
//
// One GPU per rank: NCCL refuses two ranks of one communicator on the same GPU ("Duplicate GPU
// detected"). Setting a different NCCL_HOSTID per rank in the launcher is a reported workaround
// for testing several ranks on one GPU; it is untested here, and this library never sets it.
#pragma once

#ifdef PSAQ_WITH_NCCL
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>

#include <cstddef>
#include <string>

#include "dist/communicator.h"
#endif

namespace psaq::dist {

#ifdef PSAQ_WITH_NCCL
inline constexpr bool kNcclCompiled = true;
#else
inline constexpr bool kNcclCompiled = false;
#endif

#ifdef PSAQ_WITH_NCCL

struct NcclCommunicatorOptions {
  // The CUDA device this rank drives (cudaSetDevice before ncclCommInitRank, and before every
  // operation). Default 0; pick it with SelectDevice() (dist/local_rank.h).
  int device = 0;
  // The stream operations are enqueued on. Default nullptr: the legacy default stream, which
  // orders with LibTorch's default CUDA stream (and with any blocking stream). Pass a stream of
  // `device` to overlap communication with other work; the caller then orders it.
  cudaStream_t stream = nullptr;
  // Seconds one operation may take before the communicator is aborted and the job fails.
  // Default 600. Raise it for very large buffers on slow links.
  double timeout_seconds = 600;
  // The MPI communicator whose ranks form the NCCL communicator (same rank numbers); used only
  // to broadcast the unique id. Default MPI_COMM_WORLD.
  MPI_Comm bootstrap = MPI_COMM_WORLD;
};

class NcclCommunicator final : public Communicator {
 public:
  // Collective over options.bootstrap. REQUIRES: MPI initialised (an MpiContext alive),
  // 0 <= device < cudaGetDeviceCount, timeout_seconds > 0 (TORCH_CHECK).
  explicit NcclCommunicator(const NcclCommunicatorOptions& options = {});
  // ncclCommDestroy when the communicator is healthy, ncclCommAbort when NCCL reports an error.
  ~NcclCommunicator() override;

  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }

  // The Communicator contract, on CUDA tensors of `device`. AllReduce takes float32, float64,
  // int32, int64, and also float16 and bfloat16 (kAvg: floating only; NCCL's ncclAvg).
  // Broadcast and AllGather copy bytes (any dtype). AllGather allocates its result with
  // t.options(), which needs a CUDA-enabled LibTorch (only such a LibTorch has CUDA tensors).
  void AllReduce(at::Tensor& t, ReduceOp op) override;
  void Broadcast(at::Tensor& t, int root) override;
  at::Tensor AllGather(const at::Tensor& t) override;
  // A one-element all-reduce, waited for: returns when every rank's earlier work on the stream
  // and the barrier itself have completed.
  void Barrier() override;
  double seconds_in_collectives() const override { return seconds_; }

  // Collective. The same operations on raw device pointers of `device`. `count` is in elements
  // of `dtype`. REQUIRES: pointers non-null when count > 0; kAvg with a floating dtype.
  void AllReduceRaw(void* buffer, size_t count, ncclDataType_t dtype, ReduceOp op);
  void BroadcastRaw(void* buffer, size_t count, ncclDataType_t dtype, int root);
  // `recv` holds size() * count elements; rank r's `send` lands at recv + r * count.
  void AllGatherRaw(const void* send, void* recv, size_t count, ncclDataType_t dtype);

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  ncclComm_t comm() const { return comm_; }

 private:
  // Makes device_ current for the calling thread.
  void UseDevice() const;
  // Polls until the work enqueued on stream_ has completed; fails fatally (after aborting the
  // communicator) on an error or after the timeout. `what` names the operation.
  void Wait(const char* what);
  // Aborts the communicator and fails fatally with `message` and the rank. Never returns.
  [[noreturn]] void AbortAndFail(const std::string& message);

  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  int device_ = 0;
  int rank_ = 0;
  int size_ = 1;
  double timeout_seconds_ = 600;
  void* scratch_ = nullptr;  // one int32 on the device, for Barrier
  double seconds_ = 0;
};

#endif  // PSAQ_WITH_NCCL

}  // namespace psaq::dist
