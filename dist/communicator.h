// Collective communication between the ranks of one job, on tensors.
//
// Two backends implement this interface:
//   - MpiCommunicator (dist/mpi_communicator.h): CPU tensors, over MPI_COMM_WORLD (or a given
//     communicator). What CI exercises.
//   - NcclCommunicator (dist/nccl_communicator.h, built when PSAQ_WITH_NCCL): CUDA tensors, NCCL.
//
// Collective: every method below marked "Collective" must be called by every rank of the
// communicator, in the same order, with tensors of the same dtype and number of elements;
// otherwise the job deadlocks or aborts. Errors from the transport are fatal (dist/check.h), and a
// fatal error on any rank aborts the whole job (dist/fatal.h), so no rank hangs.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>

namespace psaq::dist {

enum class ReduceOp { kSum, kAvg, kMin, kMax };

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "mpi" or "nccl".
  virtual std::string backend() const = 0;

  // Collective. In place: every rank's `t` becomes the elementwise reduction over ranks.
  // REQUIRES: `t` contiguous, on this backend's device; dtype float32/float64/int32/int64 (kAvg:
  // floating only). kAvg divides the sum by size().
  virtual void AllReduce(at::Tensor& t, ReduceOp op) = 0;

  // Collective. In place: every rank's `t` becomes rank `root`'s. REQUIRES: contiguous, on this
  // backend's device, 0 <= root < size(); any dtype (bytes are copied).
  virtual void Broadcast(at::Tensor& t, int root) = 0;

  // Collective. Returns [size() * t.numel()] (t's dtype and device) with rank r's elements at
  // [r * n, (r + 1) * n). REQUIRES: contiguous, on this backend's device; any dtype.
  virtual at::Tensor AllGather(const at::Tensor& t) = 0;

  // Collective. Returns when every rank has called it.
  virtual void Barrier() = 0;

  // Seconds spent inside collectives since construction (for the report's communication share).
  virtual double seconds_in_collectives() const = 0;
};

}  // namespace psaq::dist
