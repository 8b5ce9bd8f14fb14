// CPU pair loops of the fused patch-similarity entropy (gen/fused_entropy.h): raw pointers,
// multithreaded with at::parallel_for, memory O(threads * N' * d) whatever the batch: no S
// [B', N', N'] and no (B, G, M) kernel tensor. The same three passes as the CUDA kernels
// (gen/fused_entropy_kernel.h), and their CPU reference in the GPU parity test.
//
// Input: unit rows U [B', N', d], row-major and contiguous (gen/patch_similarity.h
// PatchUnitFeatures), described by a FusedKdeProblem (gen/fused_entropy_plan.h). Similarities
// s_ij = u_i . u_j are computed on the fly, summed over c in order 0..d-1, so s_ij == s_ji
// bit for bit. Work is split into tasks of `rows_per_task` rows of one window
// (FusedKdeRowsPerTask); each pass writes per-task partial results that are combined in task
// order, so results do not depend on the thread count for a given rows_per_task.
//
// Kernel terms e_k(s) = exp(-(x_k - s)^2 / two_var) are evaluated in T (as the reference does)
// and skipped where their argument exceeds ExpUnderflowArgument<T>() (they are exactly 0 there);
// sums are accumulated in double.
//
// Why a hand-written pair loop and not "S by matmul in chunks, then ATen exp/sum per chunk":
// measured on the 2-core dev machine (1 ATen thread, float32, forward only, min of 5; the
// machine was shared and loaded), the matmul + ATen variant (the reference with chunk_size =
// 32768 under NoGradGuard) took 87 ms for B' = 8, N = 197, d = 64 and 672 ms for B' = 512,
// N = 49, d = 32; this loop 20 ms and 67 ms. The loop visits each unordered pair once, skips
// the exactly-zero terms (with h = 0.01, grid points more than 0.39 (float64) or 0.15 (float32)
// from s, usually most of the G = 10) and allocates no [G, chunk] temporaries; its dot products
// cost about the same as a BLAS matmul at these sizes.
#pragma once

#include <cstdint>

#include "gen/fused_entropy_plan.h"

namespace psaq::gen {

// Rows per task for `chunk_size` similarities per task (KdeOptions::chunk_size): in [1, N'].
// chunk_size == 0: whole windows, unless there are fewer than 2 * num_threads windows, in which
// case each window is split into enough row blocks to give every thread about two tasks.
int64_t FusedKdeRowsPerTask(const FusedKdeProblem& problem, int64_t chunk_size, int num_threads);

// min and max of s_ij over all windows and ordered pairs (i, j), diagonal included.
template <typename T>
void FusedSimilarityMinMaxCpu(const T* unit, const FusedKdeProblem& problem, int64_t rows_per_task,
                              double* min, double* max);

// sums [B, G] (row-major): sums[b, k] = sum over image b's similarities s of e_k(s), for the
// grid x [G] and two_var = 2 h^2. The density is KdeKernelCoefficient * sums / M.
template <typename T>
void FusedKdeSumsCpu(const T* unit, const T* grid, T two_var, const FusedKdeProblem& problem,
                     int64_t rows_per_task, double* sums);

// Backward through the sums: for the weights w [B, G] (row-major, double),
//   grad[w, i, :] = 2 * sum_j g_b(s_ij) * u_j,  g_b(s) = sum_k w[b, k] * e_k(s) * (x_k - s),
// b the image of window w. With w[b, k] = dL/dp[b, k] * coefficient / (M * h^2) this is dL/dU
// (the factor 2: s_ij and s_ji both depend on u_i). Writes every element of grad [B', N', d].
template <typename T>
void FusedKdeBackwardCpu(const T* unit, const T* grid, const double* weights, T two_var,
                         const FusedKdeProblem& problem, int64_t rows_per_task, T* grad);

}  // namespace psaq::gen
