// Scalar collectives the job needs on any backend (MPI: CPU tensors; NCCL: device tensors).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dist/communicator.h"

namespace psaq::dist {

// Where `comm` exchanges tensors: the CPU for "mpi", else `model_device`.
at::Device CollectiveDevice(const dist::Communicator& comm, const at::Device& model_device);

// Collective. True on every rank when `flag` is true on any rank (one all-reduce MAX).
bool AnyRank(dist::Communicator& comm, bool flag, const at::Device& device);

// Collective. Every rank's `values` (same length on every rank), as [size() x n] row-major.
std::vector<double> GatherDoubles(dist::Communicator& comm, const std::vector<double>& values,
                                  const at::Device& device);

// Collective. Rank `root`'s `text` on every rank (other ranks' `text` is ignored): its length,
// then its bytes, in two broadcasts on `device` (as for AnyRank).
std::string BroadcastString(dist::Communicator& comm, const std::string& text, int root,
                            const at::Device& device);

// Collective. Every rank's `bytes` (any length, 0 included), indexed by rank, on every rank: one
// all-gather of the lengths, then one of the bytes padded to the longest (skipped when all are
// empty), on `device` (as for AnyRank).
std::vector<std::string> AllGatherStrings(dist::Communicator& comm, const std::string& bytes,
                                          const at::Device& device);

}  // namespace psaq::dist
