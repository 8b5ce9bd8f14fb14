// Data-parallel gradient synchronisation (what DistributedDataParallel does, without hooks):
// every rank holds the same parameters, computes gradients on its own shard of the batch, and
// after AllReduceGradients every rank's .grad() holds the average over ranks (or the sum, with
// GradSyncOptions::reduce = kSum).
//
//   BroadcastParameters(comm, params);            // once: all ranks start from rank 0's values
//   for (...) {
//     loss_on_my_shard.backward();
//     AllReduceGradients(comm, params);           // grads := mean over ranks
//     optimizer.step();                           // identical step on every rank
//   }
//
// With equal shard sizes the averaged gradient equals the gradient of the mean loss over the
// whole batch. With unequal shards (dist/partition.h's ShardRange), each rank back-propagates
// (sum of its per-sample losses) / global_batch_size and the gradients are summed (kSum).
//
// Buckets: tensors are packed into flat buffers so that many small gradients travel in a few
// large collectives. The plan (PlanBuckets) depends only on the tensors' dtypes and sizes in
// list order, so it is identical on every rank:
//   1. dtypes are taken in the order of their first appearance in the list;
//   2. within a dtype, tensors keep their list order and fill a bucket until the next one would
//      push it past bucket_bytes; then a new bucket starts. A tensor larger than bucket_bytes
//      gets a bucket of its own.
// Buckets are all-reduced in plan order.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "dist/communicator.h"

namespace psaq::dist {

struct GradSyncOptions {
  // Upper bound on one bucket, in bytes. Default 25 MiB (DDP's default). Smaller buckets mean
  // more collectives with less memory for the flat buffers; larger ones, fewer and longer.
  int64_t bucket_bytes = 25 * 1024 * 1024;
  // AllReduceGradients only: kAvg (the default, DDP's) divides the sum by the world size; kSum
  // leaves the sum (the caller has already weighted each rank's loss). kMin/kMax are refused.
  ReduceOp reduce = ReduceOp::kAvg;
};

// One flat buffer of the plan: same-dtype tensors, packed in `indices` order.
struct Bucket {
  at::ScalarType dtype = at::kFloat;
  std::vector<size_t> indices;  // positions in the tensor list, ascending
  int64_t numel = 0;            // total elements
  int64_t bytes() const { return numel * static_cast<int64_t>(c10::elementSize(dtype)); }
};

// The bucket plan for `tensors` (only their dtypes and numels are read), in the order described
// above. REQUIRES: every tensor defined; bucket_bytes >= 1 (TORCH_CHECK).
std::vector<Bucket> PlanBuckets(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes);

// What one call moved.
struct GradSyncStats {
  int64_t buckets = 0;      // collectives issued
  int64_t bytes = 0;        // bytes this rank contributed (sum of bucket sizes)
  double seconds = 0;       // wall time of the call, packing included
  double comm_seconds = 0;  // of which inside the communicator
};

// Collective: every rank calls it with a list of the same length, dtypes and shapes, in the
// same order. Overwrites every tensor in `params` with rank `root`'s values (under no-grad, so
// leaf parameters that require grad are fine). Any dtype.
// REQUIRES: tensors defined, dense, all on the communicator's device; 0 <= root < comm.size().
GradSyncStats BroadcastParameters(Communicator& comm, const std::vector<at::Tensor>& params,
                                  int root = 0, const GradSyncOptions& options = {});

// Collective (same contract as above). Replaces each parameter's .grad() by its average over
// ranks (options.reduce == kAvg) or its sum (kSum). A parameter whose .grad() is undefined (it took
// no part in this rank's loss) gets a zero gradient first, so every rank sends the same layout and
// the average counts it as zero. REQUIRES: every parameter requires grad and is floating; gradients
// dense (not sparse); all on the communicator's device; options.reduce is kAvg or kSum
// (TORCH_CHECK).
GradSyncStats AllReduceGradients(Communicator& comm, const std::vector<at::Tensor>& params,
                                 const GradSyncOptions& options = {});

}  // namespace psaq::dist
