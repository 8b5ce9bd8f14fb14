#include "dist/mpi_communicator.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <climits>
#include <cstdint>

#include "dist/check.h"
#include "dist/base/scoped_seconds.h"

namespace psaq::dist {
namespace {

// Largest count passed to one MPI call (MPI counts are int); larger tensors go in chunks.
constexpr int64_t kMaxMpiCount = int64_t{1} << 30;

MPI_Datatype ReduceType(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat:
      return MPI_FLOAT;
    case at::kDouble:
      return MPI_DOUBLE;
    case at::kInt:
      return MPI_INT32_T;
    case at::kLong:
      return MPI_INT64_T;
    default:
      TORCH_CHECK(false, "MpiCommunicator::AllReduce: unsupported dtype ", dtype,
                  " (float32, float64, int32, int64)");
  }
  return MPI_DATATYPE_NULL;  // unreachable
}

MPI_Op ToMpi(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:  // sum, then divide
      return MPI_SUM;
    case ReduceOp::kMin:
      return MPI_MIN;
    case ReduceOp::kMax:
      return MPI_MAX;
  }
  LOG(FATAL) << "unknown ReduceOp " << static_cast<int>(op);
  return MPI_OP_NULL;
}

void CheckCpuContiguous(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.defined(), "MpiCommunicator::", what, ": undefined tensor");
  TORCH_CHECK(t.layout() == at::kStrided, "MpiCommunicator::", what, ": tensor must be dense");
  TORCH_CHECK(t.device().is_cpu(), "MpiCommunicator::", what, ": tensor is on ", t.device(),
              "; the MPI backend takes CPU tensors");
  TORCH_CHECK(t.is_contiguous(), "MpiCommunicator::", what, ": tensor must be contiguous");
}

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm) {
  int initialized = 0, finalized = 0;
  PSAQ_MPI_CHECK(MPI_Initialized(&initialized));
  PSAQ_MPI_CHECK(MPI_Finalized(&finalized));
  TORCH_CHECK(initialized && !finalized,
              "MpiCommunicator: MPI is not initialised (create an MpiContext first)");
  PSAQ_MPI_CHECK(MPI_Comm_dup(comm, &comm_));
  PSAQ_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  PSAQ_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  PSAQ_MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) {
    LOG(ERROR) << RankPrefix() << "MpiCommunicator destroyed after MPI_Finalize";
    return;
  }
  const int rc = MPI_Comm_free(&comm_);
  if (rc != MPI_SUCCESS) LOG(ERROR) << RankPrefix() << "MPI_Comm_free: " << MpiErrorString(rc);
}

void MpiCommunicator::AllReduce(at::Tensor& t, ReduceOp op) {
  CheckCpuContiguous(t, "AllReduce");
  const MPI_Datatype type = ReduceType(t.scalar_type());
  TORCH_CHECK(op != ReduceOp::kAvg || t.is_floating_point(),
              "MpiCommunicator::AllReduce: kAvg needs a floating dtype, got ", t.scalar_type());
  base::ScopedSeconds timer(seconds_);
  const int64_t n = t.numel();
  const int64_t element = t.element_size();
  char* data = static_cast<char*>(t.data_ptr());
  for (int64_t begin = 0; begin < n; begin += kMaxMpiCount) {
    const int count = static_cast<int>(std::min(kMaxMpiCount, n - begin));
    PSAQ_MPI_CHECK(
        MPI_Allreduce(MPI_IN_PLACE, data + begin * element, count, type, ToMpi(op), comm_));
  }
  if (op == ReduceOp::kAvg) t.div_(size_);
}

void MpiCommunicator::Broadcast(at::Tensor& t, int root) {
  CheckCpuContiguous(t, "Broadcast");
  TORCH_CHECK(root >= 0 && root < size_, "MpiCommunicator::Broadcast: root ", root,
              " is outside [0, ", size_, ")");
  base::ScopedSeconds timer(seconds_);
  const int64_t bytes = t.numel() * static_cast<int64_t>(t.element_size());
  char* data = static_cast<char*>(t.data_ptr());
  for (int64_t begin = 0; begin < bytes; begin += kMaxMpiCount) {
    const int count = static_cast<int>(std::min(kMaxMpiCount, bytes - begin));
    PSAQ_MPI_CHECK(MPI_Bcast(data + begin, count, MPI_BYTE, root, comm_));
  }
}

at::Tensor MpiCommunicator::AllGather(const at::Tensor& t) {
  CheckCpuContiguous(t, "AllGather");
  const int64_t bytes = t.numel() * static_cast<int64_t>(t.element_size());
  TORCH_CHECK(bytes <= INT_MAX, "MpiCommunicator::AllGather: ", bytes,
              " bytes per rank exceeds the MPI count limit (", INT_MAX, ")");
  at::Tensor out = at::empty({size_ * t.numel()}, t.options());  // [size * n]
  if (bytes == 0) return out;
  base::ScopedSeconds timer(seconds_);
  PSAQ_MPI_CHECK(MPI_Allgather(t.data_ptr(), static_cast<int>(bytes), MPI_BYTE, out.data_ptr(),
                               static_cast<int>(bytes), MPI_BYTE, comm_));
  return out;
}

void MpiCommunicator::Barrier() {
  base::ScopedSeconds timer(seconds_);
  PSAQ_MPI_CHECK(MPI_Barrier(comm_));
}

}  // namespace psaq::dist
