#include "dist/grad_sync.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <chrono>
#include <utility>

namespace psaq::dist {
namespace {

// REQUIRES: non-empty. Checks every tensor is defined, dense and on the first tensor's device.
void CheckSameDevice(const std::vector<at::Tensor>& tensors, const char* what) {
  const at::Device device = tensors.front().device();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const at::Tensor& t = tensors[i];
    TORCH_CHECK(t.defined(), what, ": tensor ", i, " is undefined");
    TORCH_CHECK(t.layout() == at::kStrided, what, ": tensor ", i, " is not dense");
    TORCH_CHECK(t.device() == device, what, ": tensor ", i, " is on ", t.device(),
                " but tensor 0 is on ", device);
  }
}

// Runs `op` on a flat buffer holding the bucket's tensors and writes the result back:
// one tensor that is already contiguous is used in place, otherwise it is packed and unpacked.
template <typename Op>
void ForEachBucket(const std::vector<at::Tensor>& tensors, const std::vector<Bucket>& plan,
                   GradSyncStats& stats, Op&& op) {
  for (const Bucket& bucket : plan) {
    ++stats.buckets;
    stats.bytes += bucket.bytes();
    if (bucket.indices.size() == 1 && tensors[bucket.indices[0]].is_contiguous()) {
      at::Tensor flat = tensors[bucket.indices[0]];
      op(flat);
      continue;
    }
    at::Tensor flat = at::empty({bucket.numel}, tensors[bucket.indices[0]].options());  // [numel]
    int64_t offset = 0;
    for (size_t i : bucket.indices) {
      const at::Tensor& t = tensors[i];
      flat.narrow(0, offset, t.numel()).view_as(t).copy_(t);
      offset += t.numel();
    }
    op(flat);
    offset = 0;
    for (size_t i : bucket.indices) {
      at::Tensor t = tensors[i];
      t.copy_(flat.narrow(0, offset, t.numel()).view_as(t));
      offset += t.numel();
    }
  }
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

std::vector<Bucket> PlanBuckets(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes) {
  TORCH_CHECK(bucket_bytes >= 1, "PlanBuckets: bucket_bytes must be >= 1, got ", bucket_bytes);
  // Dtypes in order of first appearance.
  std::vector<at::ScalarType> dtypes;
  for (size_t i = 0; i < tensors.size(); ++i) {
    TORCH_CHECK(tensors[i].defined(), "PlanBuckets: tensor ", i, " is undefined");
    const at::ScalarType d = tensors[i].scalar_type();
    if (std::find(dtypes.begin(), dtypes.end(), d) == dtypes.end()) dtypes.push_back(d);
  }
  std::vector<Bucket> plan;
  for (at::ScalarType dtype : dtypes) {
    const int64_t element = static_cast<int64_t>(c10::elementSize(dtype));
    Bucket current;
    current.dtype = dtype;
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (tensors[i].scalar_type() != dtype) continue;
      const int64_t numel = tensors[i].numel();
      if (!current.indices.empty() && (current.numel + numel) * element > bucket_bytes) {
        plan.push_back(std::move(current));
        current = Bucket();
        current.dtype = dtype;
      }
      current.indices.push_back(i);
      current.numel += numel;
    }
    if (!current.indices.empty()) plan.push_back(std::move(current));
  }
  return plan;
}

GradSyncStats BroadcastParameters(Communicator& comm, const std::vector<at::Tensor>& params,
                                  int root, const GradSyncOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  GradSyncStats stats;
  if (params.empty()) return stats;
  CheckSameDevice(params, "BroadcastParameters");
  TORCH_CHECK(root >= 0 && root < comm.size(), "BroadcastParameters: root ", root,
              " is outside [0, ", comm.size(), ")");
  c10::NoGradGuard no_grad;  // writes into leaf parameters
  const double comm_before = comm.seconds_in_collectives();
  ForEachBucket(params, PlanBuckets(params, options.bucket_bytes), stats,
                [&](at::Tensor& flat) { comm.Broadcast(flat, root); });
  stats.comm_seconds = comm.seconds_in_collectives() - comm_before;
  stats.seconds = SecondsSince(start);
  return stats;
}

GradSyncStats AllReduceGradients(Communicator& comm, const std::vector<at::Tensor>& params,
                                 const GradSyncOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  GradSyncStats stats;
  if (params.empty()) return stats;
  CheckSameDevice(params, "AllReduceGradients");
  TORCH_CHECK(options.reduce == ReduceOp::kAvg || options.reduce == ReduceOp::kSum,
              "AllReduceGradients: reduce must be kAvg or kSum");
  std::vector<at::Tensor> grads;
  grads.reserve(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const at::Tensor& p = params[i];
    TORCH_CHECK(p.requires_grad(), "AllReduceGradients: parameter ", i, " does not require grad");
    TORCH_CHECK(p.is_floating_point(), "AllReduceGradients: parameter ", i, " has dtype ",
                p.scalar_type(), "; gradients need a floating dtype");
    if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    const at::Tensor& g = p.grad();
    TORCH_CHECK(g.layout() == at::kStrided, "AllReduceGradients: the gradient of parameter ", i,
                " is sparse");
    TORCH_CHECK(g.sizes() == p.sizes() && g.scalar_type() == p.scalar_type(),
                "AllReduceGradients: the gradient of parameter ", i, " has shape ", g.sizes(),
                " and dtype ", g.scalar_type(), "; the parameter has ", p.sizes(), " and ",
                p.scalar_type());
    grads.push_back(g);
  }
  CheckSameDevice(grads, "AllReduceGradients (gradients)");
  c10::NoGradGuard no_grad;
  const double comm_before = comm.seconds_in_collectives();
  ForEachBucket(grads, PlanBuckets(grads, options.bucket_bytes), stats,
                [&](at::Tensor& flat) { comm.AllReduce(flat, options.reduce); });
  stats.comm_seconds = comm.seconds_in_collectives() - comm_before;
  stats.seconds = SecondsSince(start);
  return stats;
}

}  // namespace psaq::dist
