// CUDA kernels of the fused patch-similarity entropy; see gen/fused_entropy_kernel.h for the
// contract and gen/fused_entropy_plan.h for the tiling. Index arithmetic inside a block is int
// (the planner bounds tile * dim by the shared-memory size); offsets into global memory are int64.
#include <cuda_runtime.h>
#include <math_constants.h>

#include <cstdint>

#include "gen/fused_entropy_kernel.h"

namespace psaq::gen {
namespace {

constexpr int kWarpSize = 32;
constexpr int kThreads = static_cast<int>(kFusedKdeThreads);
constexpr int kWarps = kThreads / kWarpSize;
constexpr int kMaxGrid = static_cast<int>(kFusedKdeMaxGridPoints);
static_assert(kThreads % kWarpSize == 0 && kThreads >= kMaxGrid, "block size");
static_assert((kWarps + 2) * kMaxGrid * 8 == kFusedKdeStaticSharedBytes,
              "kFusedKdeStaticSharedBytes must describe the kernels' static shared arrays");

__device__ inline float DeviceExp(float x) { return expf(x); }
__device__ inline double DeviceExp(double x) { return exp(x); }

__device__ inline double WarpSum(double v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v += __shfl_down_sync(0xffffffffu, v, offset);
  }
  return v;
}
__device__ inline double WarpMin(double v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    const double o = __shfl_down_sync(0xffffffffu, v, offset);
    v = o < v ? o : v;
  }
  return v;
}
__device__ inline double WarpMax(double v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    const double o = __shfl_down_sync(0xffffffffu, v, offset);
    v = o > v ? o : v;
  }
  return v;
}

// Stages rows [row0, row0 + tile) of `window` into tile[tile][row_stride], zeros past N'.
template <typename T>
__device__ void StageTile(const T* unit, const FusedKdeProblem& p, const FusedKdeLaunch& l,
                          int64_t window, int64_t row0, T* tile) {
  const int d = static_cast<int>(p.dim);
  const int count = static_cast<int>(l.tile) * d;
  const int stride = static_cast<int>(l.row_stride);
  const T* rows = unit + window * p.tokens * p.dim;
  for (int e = threadIdx.x; e < count; e += blockDim.x) {
    const int r = e / d;
    const int c = e - r * d;
    const int64_t row = row0 + r;
    tile[r * stride + c] = row < p.tokens ? rows[row * p.dim + c] : T(0);
  }
}

template <typename T>
__device__ inline T Dot(const T* a, const T* b, int d) {
  T s = 0;
  for (int c = 0; c < d; ++c) s += a[c] * b[c];
  return s;
}

// Per-block min/max (NaN if any similarity is NaN) of a kPairs tile pair -> partials[block, 0:2].
template <typename T>
__global__ void __launch_bounds__(kThreads)
    MinMaxKernel(const T* unit, FusedKdeProblem p, FusedKdeLaunch l, double* partials) {
  extern __shared__ __align__(16) unsigned char shared[];
  __shared__ double warp_min[kWarps], warp_max[kWarps];
  const int tile = static_cast<int>(l.tile);
  const int stride = static_cast<int>(l.row_stride);
  T* a = reinterpret_cast<T*>(shared);
  T* b = a + tile * stride;
  const int64_t window = blockIdx.x / l.blocks_per_window;
  int64_t ti = 0, tj = 0;
  TilePairFromIndex(blockIdx.x % l.blocks_per_window, l.tiles, &ti, &tj);
  StageTile(unit, p, l, window, ti * tile, a);
  StageTile(unit, p, l, window, tj * tile, b);
  __syncthreads();

  double lo = CUDART_INF, hi = -CUDART_INF;
  int nan = 0;
  for (int e = threadIdx.x; e < tile * tile; e += blockDim.x) {
    const int i = e / tile;
    const int j = e - i * tile;
    if (ti * tile + i >= p.tokens || tj * tile + j >= p.tokens) continue;
    const double s = Dot(a + i * stride, b + j * stride, static_cast<int>(p.dim));
    lo = s < lo ? s : lo;
    hi = s > hi ? s : hi;
    nan |= s != s;
  }
  lo = WarpMin(lo);
  hi = WarpMax(hi);
  if (threadIdx.x % kWarpSize == 0) {
    warp_min[threadIdx.x / kWarpSize] = lo;
    warp_max[threadIdx.x / kWarpSize] = hi;
  }
  const int any_nan = __syncthreads_or(nan);
  if (threadIdx.x == 0) {
    for (int w = 1; w < kWarps; ++w) {
      lo = warp_min[w] < lo ? warp_min[w] : lo;
      hi = warp_max[w] > hi ? warp_max[w] : hi;
    }
    partials[2 * blockIdx.x] = any_nan ? CUDART_NAN : lo;
    partials[2 * blockIdx.x + 1] = any_nan ? CUDART_NAN : hi;
  }
}

// One block: min_max = (min, max) over `count` rows of partials (NaN propagates).
__global__ void __launch_bounds__(kThreads)
    MinMaxReduceKernel(const double* partials, int64_t count, double* min_max) {
  __shared__ double warp_min[kWarps], warp_max[kWarps];
  double lo = CUDART_INF, hi = -CUDART_INF;
  int nan = 0;
  for (int64_t r = threadIdx.x; r < count; r += blockDim.x) {
    const double a = partials[2 * r], b = partials[2 * r + 1];
    lo = a < lo ? a : lo;
    hi = b > hi ? b : hi;
    nan |= (a != a) || (b != b);
  }
  lo = WarpMin(lo);
  hi = WarpMax(hi);
  if (threadIdx.x % kWarpSize == 0) {
    warp_min[threadIdx.x / kWarpSize] = lo;
    warp_max[threadIdx.x / kWarpSize] = hi;
  }
  const int any_nan = __syncthreads_or(nan);
  if (threadIdx.x == 0) {
    for (int w = 1; w < kWarps; ++w) {
      lo = warp_min[w] < lo ? warp_min[w] : lo;
      hi = warp_max[w] > hi ? warp_max[w] : hi;
    }
    min_max[0] = any_nan ? CUDART_NAN : lo;
    min_max[1] = any_nan ? CUDART_NAN : hi;
  }
}

// Per-block kernel sums of a kPairs tile pair -> partials[block, 0:G] (weight 2 off the diagonal
// tiles: the mirrored tile pair is not launched).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    SumsKernel(const T* unit, const T* grid, T two_var, FusedKdeProblem p, FusedKdeLaunch l,
               double* partials) {
  extern __shared__ __align__(16) unsigned char shared[];
  __shared__ T xs[kMaxGrid];
  __shared__ double warp_sums[kWarps][kMaxGrid];
  const int g = static_cast<int>(p.grid_points);
  const int tile = static_cast<int>(l.tile);
  const int stride = static_cast<int>(l.row_stride);
  T* a = reinterpret_cast<T*>(shared);
  T* b = a + tile * stride;
  const int64_t window = blockIdx.x / l.blocks_per_window;
  int64_t ti = 0, tj = 0;
  TilePairFromIndex(blockIdx.x % l.blocks_per_window, l.tiles, &ti, &tj);
  if (threadIdx.x < g) xs[threadIdx.x] = grid[threadIdx.x];
  StageTile(unit, p, l, window, ti * tile, a);
  StageTile(unit, p, l, window, tj * tile, b);
  __syncthreads();

  const double weight = ti == tj ? 1.0 : 2.0;
  const T cutoff = ExpUnderflowArgument<T>();
  double acc[kMaxGrid];
#pragma unroll
  for (int k = 0; k < kMaxGrid; ++k) acc[k] = 0;
  for (int e = threadIdx.x; e < tile * tile; e += blockDim.x) {
    const int i = e / tile;
    const int j = e - i * tile;
    if (ti * tile + i >= p.tokens || tj * tile + j >= p.tokens) continue;
    const T s = Dot(a + i * stride, b + j * stride, static_cast<int>(p.dim));
#pragma unroll
    for (int k = 0; k < kMaxGrid; ++k) {
      if (k < g) {
        const T diff = xs[k] - s;
        const T arg = diff * diff / two_var;
        if (arg < cutoff) acc[k] += weight * static_cast<double>(DeviceExp(-arg));
      }
    }
  }
#pragma unroll
  for (int k = 0; k < kMaxGrid; ++k) {
    if (k < g) {  // g is the same for the whole block: every lane takes part in the shuffles
      const double v = WarpSum(acc[k]);
      if (threadIdx.x % kWarpSize == 0) warp_sums[threadIdx.x / kWarpSize][k] = v;
    }
  }
  __syncthreads();
  if (threadIdx.x < g) {
    double total = 0;
    for (int w = 0; w < kWarps; ++w) total += warp_sums[w][threadIdx.x];
    partials[static_cast<int64_t>(blockIdx.x) * g + threadIdx.x] = total;
  }
}

// One block per image: sums[b, k] = sum of the image's partial rows, in a fixed tree order.
__global__ void __launch_bounds__(kThreads)
    SumsReduceKernel(const double* partials, int64_t blocks_per_image, int g, double* sums) {
  __shared__ double scratch[kThreads];
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blocks_per_image;
  for (int k = 0; k < g; ++k) {
    double t = 0;
    for (int64_t r = threadIdx.x; r < blocks_per_image; r += blockDim.x) {
      t += partials[(first + r) * g + k];
    }
    scratch[threadIdx.x] = t;
    __syncthreads();
    for (int half = kThreads / 2; half > 0; half /= 2) {
      if (threadIdx.x < half) scratch[threadIdx.x] += scratch[threadIdx.x + half];
      __syncthreads();
    }
    if (threadIdx.x == 0) sums[static_cast<int64_t>(blockIdx.x) * g + k] = scratch[0];
    __syncthreads();
  }
}

// One block per (window, row tile): grad rows = 2 * sum over all column tiles of g(s_ij) * u_j.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    BackwardKernel(const T* unit, const T* grid, const double* weights, T two_var,
                   FusedKdeProblem p, FusedKdeLaunch l, T* grad) {
  extern __shared__ __align__(16) unsigned char shared[];
  __shared__ T xs[kMaxGrid];
  __shared__ double ws[kMaxGrid];
  const int g = static_cast<int>(p.grid_points);
  const int d = static_cast<int>(p.dim);
  const int tile = static_cast<int>(l.tile);
  const int stride = static_cast<int>(l.row_stride);
  T* a = reinterpret_cast<T*>(shared);  // the block's rows   [tile][stride]
  T* b = a + tile * stride;             // one column tile    [tile][stride]
  T* factors = b + tile * stride;       // 2 g(s_ij)          [tile][tile]
  T* acc = factors + tile * tile;       // gradient rows      [tile][d]
  const int64_t window = blockIdx.x / l.tiles;
  const int64_t ti = blockIdx.x % l.tiles;
  const int64_t image = window / (p.windows / p.images);
  if (threadIdx.x < g) {
    xs[threadIdx.x] = grid[threadIdx.x];
    ws[threadIdx.x] = weights[image * g + threadIdx.x];
  }
  StageTile(unit, p, l, window, ti * tile, a);
  // Thread t owns acc[t], acc[t + blockDim.x], ... for the whole kernel (no sync needed on it).
  for (int e = threadIdx.x; e < tile * d; e += blockDim.x) acc[e] = 0;
  const T cutoff = ExpUnderflowArgument<T>();

  for (int64_t tj = 0; tj < l.tiles; ++tj) {
    __syncthreads();  // the previous column tile and factors are no longer read
    StageTile(unit, p, l, window, tj * tile, b);
    __syncthreads();
    for (int e = threadIdx.x; e < tile * tile; e += blockDim.x) {
      const int i = e / tile;
      const int j = e - i * tile;
      T factor = 0;
      if (ti * tile + i < p.tokens && tj * tile + j < p.tokens) {
        const T s = Dot(a + i * stride, b + j * stride, d);
        double slope = 0;
#pragma unroll
        for (int k = 0; k < kMaxGrid; ++k) {
          if (k < g) {
            const T diff = xs[k] - s;
            const T arg = diff * diff / two_var;
            if (arg < cutoff) {
              slope += ws[k] * static_cast<double>(DeviceExp(-arg)) * static_cast<double>(diff);
            }
          }
        }
        factor = static_cast<T>(2 * slope);
      }
      factors[e] = factor;
    }
    __syncthreads();
    for (int e = threadIdx.x; e < tile * d; e += blockDim.x) {
      const int i = e / d;
      const int c = e - i * d;
      T sum = acc[e];
      for (int j = 0; j < tile; ++j) sum += factors[i * tile + j] * b[j * stride + c];
      acc[e] = sum;
    }
  }
  T* out = grad + window * p.tokens * p.dim;
  for (int e = threadIdx.x; e < tile * d; e += blockDim.x) {
    const int i = e / d;
    const int64_t row = ti * tile + i;
    if (row < p.tokens) out[row * p.dim + (e - i * d)] = acc[e];
  }
}

bool LaunchValid(const FusedKdeLaunch& l, FusedKdePass pass) {
  return l.pass == pass && l.threads == kThreads && l.tile >= 1 && l.tiles >= 1 && l.blocks >= 1 &&
         l.blocks <= INT32_MAX && l.blocks_per_window >= 1 &&
         l.shared_bytes + kFusedKdeStaticSharedBytes <= kFusedKdeSharedBytes;
}

// The invariants the kernels rely on; a plan from PlanFusedKde for this T satisfies them.
bool PlanValid(const FusedKdePlan& plan, int64_t element_bytes) {
  const FusedKdeProblem& p = plan.problem;
  return p.element_bytes == element_bytes && p.windows >= 1 && p.images >= 1 &&
         p.windows % p.images == 0 && p.tokens >= 1 && p.dim >= 1 && p.grid_points >= 2 &&
         p.grid_points <= kMaxGrid && LaunchValid(plan.pairs, FusedKdePass::kPairs) &&
         LaunchValid(plan.rows, FusedKdePass::kRows) &&
         plan.pairs.blocks == p.windows * plan.pairs.blocks_per_window &&
         plan.rows.blocks == p.windows * plan.rows.tiles &&
         plan.workspace_bytes >= plan.pairs.blocks * (p.grid_points > 2 ? p.grid_points : 2) * 8;
}

}  // namespace

template <typename T>
cudaError_t LaunchFusedSimilarityMinMax(const T* unit, const FusedKdePlan& plan, void* workspace,
                                        double* min_max, cudaStream_t stream) {
  if (!PlanValid(plan, sizeof(T))) return cudaErrorInvalidValue;
  const FusedKdeLaunch& l = plan.pairs;
  double* partials = static_cast<double*>(workspace);
  MinMaxKernel<T><<<static_cast<unsigned>(l.blocks), kThreads, l.shared_bytes, stream>>>(
      unit, plan.problem, l, partials);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  MinMaxReduceKernel<<<1, kThreads, 0, stream>>>(partials, l.blocks, min_max);
  return cudaGetLastError();
}

template <typename T>
cudaError_t LaunchFusedKdeSums(const T* unit, const T* grid, T two_var, const FusedKdePlan& plan,
                               void* workspace, double* sums, cudaStream_t stream) {
  if (!PlanValid(plan, sizeof(T))) return cudaErrorInvalidValue;
  const FusedKdeProblem& p = plan.problem;
  const FusedKdeLaunch& l = plan.pairs;
  double* partials = static_cast<double*>(workspace);
  SumsKernel<T><<<static_cast<unsigned>(l.blocks), kThreads, l.shared_bytes, stream>>>(
      unit, grid, two_var, p, l, partials);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  const int64_t blocks_per_image = (p.windows / p.images) * l.blocks_per_window;
  SumsReduceKernel<<<static_cast<unsigned>(p.images), kThreads, 0, stream>>>(
      partials, blocks_per_image, static_cast<int>(p.grid_points), sums);
  return cudaGetLastError();
}

template <typename T>
cudaError_t LaunchFusedKdeBackward(const T* unit, const T* grid, const double* weights, T two_var,
                                   const FusedKdePlan& plan, T* grad, cudaStream_t stream) {
  if (!PlanValid(plan, sizeof(T))) return cudaErrorInvalidValue;
  const FusedKdeLaunch& l = plan.rows;
  BackwardKernel<T><<<static_cast<unsigned>(l.blocks), kThreads, l.shared_bytes, stream>>>(
      unit, grid, weights, two_var, plan.problem, l, grad);
  return cudaGetLastError();
}

#define PSAQ_INSTANTIATE(T)                                                                     \
  template cudaError_t LaunchFusedSimilarityMinMax<T>(const T*, const FusedKdePlan&, void*,     \
                                                      double*, cudaStream_t);                   \
  template cudaError_t LaunchFusedKdeSums<T>(const T*, const T*, T, const FusedKdePlan&, void*, \
                                             double*, cudaStream_t);                            \
  template cudaError_t LaunchFusedKdeBackward<T>(const T*, const T*, const double*, T,          \
                                                 const FusedKdePlan&, T*, cudaStream_t);
PSAQ_INSTANTIATE(float)
PSAQ_INSTANTIATE(double)
#undef PSAQ_INSTANTIATE

}  // namespace psaq::gen
