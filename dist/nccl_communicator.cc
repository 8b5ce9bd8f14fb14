#include "dist/nccl_communicator.h"

#ifdef PSAQ_WITH_NCCL

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "dist/check.h"
#include "dist/nccl_check.h"
#include "dist/base/scoped_seconds.h"

#if NCCL_VERSION_CODE < NCCL_VERSION(2, 13, 0)
#error "psaq needs NCCL >= 2.13 (ncclAvg, ncclGetLastError)"
#endif

namespace psaq::dist {
namespace {

ncclDataType_t ReduceType(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat:
      return ncclFloat32;
    case at::kDouble:
      return ncclFloat64;
    case at::kHalf:
      return ncclFloat16;
    case at::kBFloat16:
      return ncclBfloat16;
    case at::kInt:
      return ncclInt32;
    case at::kLong:
      return ncclInt64;
    default:
      TORCH_CHECK(false, "NcclCommunicator::AllReduce: unsupported dtype ", dtype,
                  " (float32, float64, float16, bfloat16, int32, int64)");
  }
  return ncclFloat32;  // unreachable
}

bool IsFloating(ncclDataType_t dtype) {
  return dtype == ncclFloat32 || dtype == ncclFloat64 || dtype == ncclFloat16 ||
         dtype == ncclBfloat16;
}

ncclRedOp_t ToNccl(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return ncclSum;
    case ReduceOp::kAvg:
      return ncclAvg;
    case ReduceOp::kMin:
      return ncclMin;
    case ReduceOp::kMax:
      return ncclMax;
  }
  LOG(FATAL) << "unknown ReduceOp " << static_cast<int>(op);
  return ncclSum;
}

}  // namespace

NcclCommunicator::NcclCommunicator(const NcclCommunicatorOptions& options)
    : stream_(options.stream), device_(options.device), timeout_seconds_(options.timeout_seconds) {
  TORCH_CHECK(timeout_seconds_ > 0, "NcclCommunicator: timeout_seconds must be > 0, got ",
              timeout_seconds_);
  int initialized = 0, finalized = 0;
  PSAQ_MPI_CHECK(MPI_Initialized(&initialized));
  PSAQ_MPI_CHECK(MPI_Finalized(&finalized));
  TORCH_CHECK(initialized && !finalized,
              "NcclCommunicator: MPI is not initialised (create an MpiContext first)");
  int device_count = 0;
  PSAQ_CUDA_CHECK(cudaGetDeviceCount(&device_count));
  TORCH_CHECK(device_ >= 0 && device_ < device_count, "NcclCommunicator: device ", device_,
              " is outside [0, ", device_count, ")");
  PSAQ_MPI_CHECK(MPI_Comm_rank(options.bootstrap, &rank_));
  PSAQ_MPI_CHECK(MPI_Comm_size(options.bootstrap, &size_));

  UseDevice();
  ncclUniqueId id;
  if (rank_ == 0) PSAQ_NCCL_CHECK(ncclGetUniqueId(&id));
  PSAQ_MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, options.bootstrap));
  PSAQ_NCCL_CHECK(ncclCommInitRank(&comm_, size_, id, rank_));
  PSAQ_CUDA_CHECK(cudaMalloc(&scratch_, sizeof(int32_t)));
  PSAQ_CUDA_CHECK(cudaMemset(scratch_, 0, sizeof(int32_t)));
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_ == nullptr) return;
  UseDevice();
  if (scratch_ != nullptr) {
    const cudaError_t rc = cudaFree(scratch_);
    if (rc != cudaSuccess) LOG(ERROR) << RankPrefix() << "cudaFree: " << cudaGetErrorString(rc);
  }
  ncclResult_t async = ncclSuccess;
  const ncclResult_t rc = ncclCommGetAsyncError(comm_, &async);
  if (rc == ncclSuccess && async == ncclSuccess) {
    const ncclResult_t destroyed = ncclCommDestroy(comm_);
    if (destroyed != ncclSuccess) {
      LOG(ERROR) << RankPrefix() << "ncclCommDestroy: " << ncclGetErrorString(destroyed);
    }
  } else {
    // Destroying a communicator in error can hang waiting for peers; abort it instead.
    LOG(ERROR) << RankPrefix() << "NCCL communicator in error at shutdown ("
               << ncclGetErrorString(rc != ncclSuccess ? rc : async) << "); aborting it";
    ncclCommAbort(comm_);
  }
  comm_ = nullptr;
}

void NcclCommunicator::UseDevice() const { PSAQ_CUDA_CHECK(cudaSetDevice(device_)); }

void NcclCommunicator::AbortAndFail(const std::string& message) {
  const char* detail = comm_ != nullptr ? ncclGetLastError(comm_) : nullptr;
  const std::string nccl_detail =
      detail != nullptr && detail[0] != '\0' ? std::string(" (NCCL: ") + detail + ")" : "";
  if (comm_ != nullptr) ncclCommAbort(comm_);
  comm_ = nullptr;
  LOG(FATAL) << RankPrefix() << "NcclCommunicator on device " << device_ << ": " << message
             << nccl_detail << "; communicator aborted";
  std::abort();  // LOG(FATAL) does not return; this tells the compiler so
}

void NcclCommunicator::Wait(const char* what) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto timeout = std::chrono::duration<double>(timeout_seconds_);
  for (int polls = 0;; ++polls) {
    const cudaError_t query = cudaStreamQuery(stream_);
    if (query == cudaSuccess) return;
    if (query != cudaErrorNotReady) {
      AbortAndFail(std::string(what) + ": CUDA error on the stream: " + cudaGetErrorName(query) +
                   ": " + cudaGetErrorString(query));
    }
    ncclResult_t async = ncclSuccess;
    const ncclResult_t rc = ncclCommGetAsyncError(comm_, &async);
    if (rc != ncclSuccess) {
      AbortAndFail(std::string(what) + ": ncclCommGetAsyncError failed: " + ncclGetErrorString(rc));
    }
    if (async != ncclSuccess && async != ncclInProgress) {
      AbortAndFail(std::string(what) + ": asynchronous NCCL error: " + ncclGetErrorString(async));
    }
    if (Clock::now() - start > timeout) {
      AbortAndFail(std::string(what) + ": not complete after " + std::to_string(timeout_seconds_) +
                   " s (a peer rank may have died, or ranks called collectives in different "
                   "orders; NcclCommunicatorOptions::timeout_seconds sets the limit)");
    }
    // Spin briefly for short collectives, then sleep so NCCL's proxy threads get the CPU.
    if (polls < 1000) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
}

void NcclCommunicator::AllReduceRaw(void* buffer, size_t count, ncclDataType_t dtype, ReduceOp op) {
  TORCH_CHECK(buffer != nullptr || count == 0, "NcclCommunicator::AllReduce: null buffer");
  TORCH_CHECK(op != ReduceOp::kAvg || IsFloating(dtype),
              "NcclCommunicator::AllReduce: kAvg needs a floating dtype");
  if (count == 0) return;  // the same on every rank (Collective contract)
  base::ScopedSeconds timer(seconds_);
  UseDevice();
  PSAQ_NCCL_CHECK(ncclAllReduce(buffer, buffer, count, dtype, ToNccl(op), comm_, stream_));
  Wait("AllReduce");
}

void NcclCommunicator::BroadcastRaw(void* buffer, size_t count, ncclDataType_t dtype, int root) {
  TORCH_CHECK(buffer != nullptr || count == 0, "NcclCommunicator::Broadcast: null buffer");
  TORCH_CHECK(root >= 0 && root < size_, "NcclCommunicator::Broadcast: root ", root,
              " is outside [0, ", size_, ")");
  if (count == 0) return;
  base::ScopedSeconds timer(seconds_);
  UseDevice();
  PSAQ_NCCL_CHECK(ncclBroadcast(buffer, buffer, count, dtype, root, comm_, stream_));
  Wait("Broadcast");
}

void NcclCommunicator::AllGatherRaw(const void* send, void* recv, size_t count,
                                    ncclDataType_t dtype) {
  TORCH_CHECK((send != nullptr && recv != nullptr) || count == 0,
              "NcclCommunicator::AllGather: null buffer");
  if (count == 0) return;
  base::ScopedSeconds timer(seconds_);
  UseDevice();
  PSAQ_NCCL_CHECK(ncclAllGather(send, recv, count, dtype, comm_, stream_));
  Wait("AllGather");
}

namespace {

void CheckCudaTensor(const at::Tensor& t, int device, const char* what) {
  TORCH_CHECK(t.defined(), "NcclCommunicator::", what, ": undefined tensor");
  TORCH_CHECK(t.layout() == at::kStrided, "NcclCommunicator::", what, ": tensor must be dense");
  TORCH_CHECK(t.is_cuda() && t.device().index() == device, "NcclCommunicator::", what,
              ": tensor is on ", t.device(), "; this communicator uses cuda:", device);
  TORCH_CHECK(t.is_contiguous(), "NcclCommunicator::", what, ": tensor must be contiguous");
}

}  // namespace

void NcclCommunicator::AllReduce(at::Tensor& t, ReduceOp op) {
  CheckCudaTensor(t, device_, "AllReduce");
  AllReduceRaw(t.data_ptr(), static_cast<size_t>(t.numel()), ReduceType(t.scalar_type()), op);
}

void NcclCommunicator::Broadcast(at::Tensor& t, int root) {
  CheckCudaTensor(t, device_, "Broadcast");
  BroadcastRaw(t.data_ptr(), static_cast<size_t>(t.nbytes()), ncclUint8, root);
}

at::Tensor NcclCommunicator::AllGather(const at::Tensor& t) {
  CheckCudaTensor(t, device_, "AllGather");
  at::Tensor out = at::empty({size_ * t.numel()}, t.options());  // [size * n]
  AllGatherRaw(t.data_ptr(), out.data_ptr(), static_cast<size_t>(t.nbytes()), ncclUint8);
  return out;
}

void NcclCommunicator::Barrier() { AllReduceRaw(scratch_, 1, ncclInt32, ReduceOp::kSum); }

}  // namespace psaq::dist

#endif  // PSAQ_WITH_NCCL
