// CUDA kernels of the fused patch-similarity entropy (gen/fused_entropy.h): raw device pointers,
// a stream, and a launch plan from PlanFusedKde (gen/fused_entropy_plan.h). No LibTorch: the
// library psaq_gen_cuda builds wherever nvcc is (CMake option PSAQ_BUILD_CUDA_KERNELS); LibTorch
// CUDA tensors reach these functions through gen/fused_entropy.cc.
//
// The same three passes as the CPU loops (gen/fused_entropy_cpu.h), with the same definitions of
// sums and gradient; the CPU loops are their reference (tests/gen/fused_entropy_gpu_test.cc).
// S [B', N', N'] is never written: each block stages two tiles of unit rows in shared memory,
// forms their dot products in registers and reduces what it needs:
//   - min/max:  per-block min/max -> workspace -> one block reduces them;
//   - sums:     per-thread double accumulators for the G kernel sums (weights 1 on diagonal tiles,
//               2 off them), warp-shuffle + shared-memory block reduction -> workspace [blocks, G]
//               -> one block per image adds its blocks' rows in a fixed order (deterministic);
//   - backward: one block per (window, row tile) loops over all column tiles, forms the pair
//               factors 2 g(s_ij) in shared memory and accumulates its gradient rows there; every
//               gradient element is written once (no atomics, deterministic).
//
// Common requirements: all pointers are device memory visible to `stream`'s device, unit rows
// U [B', N', d] contiguous and row-major (plan.problem describes them), plan from PlanFusedKde
// for that problem and T's size, grid x [G] and workspace (plan.workspace_bytes, no alignment
// beyond cudaMalloc's) on the same device. Everything is enqueued on `stream`; nothing
// synchronises. Return: the launch error (cudaGetLastError) or cudaSuccess; an inconsistent plan
// returns cudaErrorInvalidValue without launching.
#pragma once

#include <cuda_runtime_api.h>

#include "gen/fused_entropy_plan.h"

namespace psaq::gen {

// min_max [2] (device, double) = (min, max) of s_ij over all windows and ordered pairs.
template <typename T>
cudaError_t LaunchFusedSimilarityMinMax(const T* unit, const FusedKdePlan& plan, void* workspace,
                                        double* min_max, cudaStream_t stream);

// sums [B, G] (device, double, row-major) = per image b, sum over its similarities s of
// exp(-(x_k - s)^2 / two_var): FusedKdeSumsCpu's definition.
template <typename T>
cudaError_t LaunchFusedKdeSums(const T* unit, const T* grid, T two_var, const FusedKdePlan& plan,
                               void* workspace, double* sums, cudaStream_t stream);

// grad [B', N', d] (device, T) = 2 * sum_j g_b(s_ij) * u_j, g_b(s) = sum_k weights[b, k] *
// exp(-(x_k - s)^2 / two_var) * (x_k - s), weights [B, G] (device, double): FusedKdeBackwardCpu's
// definition. Writes every element of grad.
template <typename T>
cudaError_t LaunchFusedKdeBackward(const T* unit, const T* grid, const double* weights, T two_var,
                                   const FusedKdePlan& plan, T* grad, cudaStream_t stream);

}  // namespace psaq::gen
