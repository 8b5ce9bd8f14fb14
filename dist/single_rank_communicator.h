// A Communicator for a world of one rank: every collective is the identity. For callers that run
// a collective routine in one process without MPI (a null comm in launch/train), and for unit
// tests run without mpirun. `size` may be set above 1 to emulate rank `rank` of a larger world in
// tests that only write files (its collectives are still the identity; use only where that is
// harmless).
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "dist/communicator.h"

namespace psaq::dist {

class SingleRankCommunicator final : public Communicator {
 public:
  explicit SingleRankCommunicator(int size = 1, int rank = 0) : size_(size), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  void AllReduce(at::Tensor& /*t*/, ReduceOp /*op*/) override { ++collectives; }
  void Broadcast(at::Tensor& /*t*/, int /*root*/) override { ++collectives; }
  at::Tensor AllGather(const at::Tensor& t) override {
    ++collectives;
    return at::cat(std::vector<at::Tensor>(static_cast<size_t>(size_), t.reshape({-1})));
  }
  void Barrier() override { ++collectives; }
  double seconds_in_collectives() const override { return 0; }
  int collectives = 0;

 private:
  int size_;
  int rank_;
};

}  // namespace psaq::dist
