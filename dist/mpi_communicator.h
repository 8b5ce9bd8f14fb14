// The MPI backend of Communicator: collectives on CPU tensors. What CI exercises, and the backend
// for CPU-only runs.
//
//   MpiContext mpi(&argc, &argv);
//   MpiCommunicator comm;                   // over a duplicate of MPI_COMM_WORLD
//   comm.AllReduce(grad, ReduceOp::kAvg);
//
// Dtypes: AllReduce takes float32, float64, int32 and int64 (kAvg: floating only; it is a sum
// followed by a division by size(), so kAvg of integers is refused rather than truncated).
// Broadcast and AllGather copy bytes and take any dtype (bool, uint8, half, ...).
// Tensors of more than INT_MAX elements are reduced/broadcast in chunks (MPI counts are int);
// AllGather REQUIRES t.numel() * element size <= INT_MAX bytes.
//
// Errors: a bad argument (undefined, non-contiguous, not on the CPU, unsupported dtype, root out
// of range) throws c10::Error before any rank communicates; a failing MPI call is fatal and
// aborts the job (dist/check.h, dist/fatal.h).
#pragma once

#include <mpi.h>

#include <string>

#include "dist/communicator.h"

namespace psaq::dist {

class MpiCommunicator final : public Communicator {
 public:
  // Collective over `comm`. Duplicates `comm` (MPI_Comm_dup), so psaq's messages never match
  // anyone else's, and sets MPI_ERRORS_RETURN on the duplicate so that a failing call is
  // reported by PSAQ_MPI_CHECK with its name and the rank before the job aborts.
  // REQUIRES: MPI initialised (an MpiContext alive) and not finalised.
  explicit MpiCommunicator(MPI_Comm comm = MPI_COMM_WORLD);
  // Collective (MPI_Comm_free). Frees the duplicate; destroy it before MPI is finalised, i.e.
  // before the MpiContext.
  ~MpiCommunicator() override;

  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  void AllReduce(at::Tensor& t, ReduceOp op) override;
  void Broadcast(at::Tensor& t, int root) override;
  at::Tensor AllGather(const at::Tensor& t) override;
  void Barrier() override;
  double seconds_in_collectives() const override { return seconds_; }

  // The duplicated communicator, for MPI calls outside this interface.
  MPI_Comm comm() const { return comm_; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  double seconds_ = 0;
};

}  // namespace psaq::dist
