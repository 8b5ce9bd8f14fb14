// Problem description and CUDA launch planning for the fused patch-similarity entropy
// (gen/fused_entropy.h). Pure C++: no LibTorch, no CUDA headers, so the shape logic is unit-tested
// on CPU machines (tests/gen/fused_entropy_plan_test.cc) and shared by the CPU loops
// (gen/fused_entropy_cpu.h) and the kernels (gen/fused_entropy_kernel.h).
//
// The work: for every window w of B' and every ordered pair (i, j) of its N' unit rows, one
// similarity s = u_i . u_j. The kernels tile each window's rows into tiles of T rows:
//   kPairs pass (min/max and kernel sums): one block per (window, tile pair (ti, tj), ti <= tj),
//     blocks ordered window-major then by TilePairFromIndex. Tile pair (ti, tj) stands for the
//     pairs (i, j) with i in tile ti and j in tile tj; an off-diagonal tile pair is counted twice
//     (weight 2, its mirror (tj, ti) is not launched), a diagonal one once over all its T x T
//     pairs. Every ordered pair of the window is thus counted exactly once.
//   kRows pass (backward): one block per (window, row tile ti), looping over all column tiles,
//     so each block owns its rows of the gradient (no atomics, deterministic).
// Rows past N' in the last tile are padding and are skipped.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define PSAQ_HOST_DEVICE __host__ __device__
#else
#define PSAQ_HOST_DEVICE
#endif

namespace psaq::gen {

// Most grid points G the kernels support (per-thread accumulators live in registers). The
// official G is 10.
inline constexpr int64_t kFusedKdeMaxGridPoints = 16;
// Threads per block of every kernel (a multiple of the warp size 32).
inline constexpr int64_t kFusedKdeThreads = 256;
// Dynamic shared memory a block may use without opting in (every architecture since sm_70).
inline constexpr int64_t kFusedKdeSharedBytes = 48 * 1024;
// Static shared memory of the kernels (reduction scratch, grid and weights), outside the plan's
// dynamic bytes: a per-warp double per grid point plus the grid and the weights.
inline constexpr int64_t kFusedKdeStaticSharedBytes =
    (kFusedKdeThreads / 32 + 2) * kFusedKdeMaxGridPoints * 8;

// One fused KDE problem: unit rows U [windows, tokens, dim] (token 0 already dropped), grouped
// into `images` images of windows / images consecutive windows each, G grid points.
struct FusedKdeProblem {
  int64_t windows = 0;        // B' (B for ViT, B * nW for Swin)
  int64_t tokens = 0;         // N' = N - 1 rows per window
  int64_t dim = 0;            // d, channels per row
  int64_t images = 0;         // B; windows % images == 0
  int64_t grid_points = 0;    // G
  int64_t element_bytes = 0;  // 4 (float) or 8 (double)
};

// Throws std::invalid_argument naming the bad field: every count >= 1, windows % images == 0,
// G >= 2, element_bytes 4 or 8.
void CheckFusedKdeProblem(const FusedKdeProblem& problem);

// Similarity values per image: M = (windows / images) * tokens^2.
int64_t FusedKdeValuesPerImage(const FusedKdeProblem& problem);

enum class FusedKdePass { kPairs, kRows };

// The launch shape of one pass.
struct FusedKdeLaunch {
  FusedKdePass pass = FusedKdePass::kPairs;
  int64_t tile = 0;               // T, rows per tile
  int64_t tiles = 0;              // ceil(N' / T) tiles per window
  int64_t blocks_per_window = 0;  // kPairs: tiles * (tiles + 1) / 2; kRows: tiles
  int64_t blocks = 0;             // windows * blocks_per_window (the 1-D grid)
  int64_t threads = 0;            // block size, kFusedKdeThreads
  int64_t row_stride = 0;         // shared-memory elements per tile row: dim + 1 (bank padding)
  int64_t shared_bytes = 0;       // dynamic shared memory per block
};

struct FusedKdePlan {
  FusedKdeProblem problem;
  FusedKdeLaunch pairs;  // min/max and kernel sums
  FusedKdeLaunch rows;   // backward
  // Device scratch the min/max and sums passes need: one row of max(2, G) doubles per kPairs
  // block (per-block partial results, reduced in a fixed order: deterministic).
  int64_t workspace_bytes = 0;
};

// Dynamic shared bytes of a pass for tile T (what the kernels carve out of extern shared memory):
//   kPairs: two tiles, 2 * T * (dim + 1) elements;
//   kRows:  two tiles, the T x T pair factors and the T x dim gradient accumulator, in elements.
int64_t FusedKdeSharedBytes(const FusedKdeProblem& problem, FusedKdePass pass, int64_t tile);

// Plans both passes. Tile T per pass: the largest of 16, 8, 4, 2, 1 whose shared bytes (plus
// kFusedKdeStaticSharedBytes) fit `shared_bytes_limit`. T = 16 gives one pair per thread of a
// 256-thread block and no padding for Swin's N' = 48 (3 tiles). With the default limit T = 16
// holds up to d = 186 (kPairs) and 118 (kRows) in float64, 373 and 243 in float32.
// Throws std::invalid_argument for an invalid problem, G > kFusedKdeMaxGridPoints, a dim too
// large for one row per tile in `shared_bytes_limit`, or more than 2^31 - 1 blocks.
FusedKdePlan PlanFusedKde(const FusedKdeProblem& problem,
                          int64_t shared_bytes_limit = kFusedKdeSharedBytes);

// The index-th tile pair (ti, tj), ti <= tj, of a window with `tiles` tiles, in row-major order
// of the upper triangle: (0,0), (0,1), ..., (0,tiles-1), (1,1), ... REQUIRES: 0 <= index <
// tiles * (tiles + 1) / 2. A loop of at most `tiles` steps: exact, no floating-point root.
PSAQ_HOST_DEVICE inline void TilePairFromIndex(int64_t index, int64_t tiles, int64_t* ti,
                                               int64_t* tj) {
  int64_t row = 0;
  while (index >= tiles - row) {
    index -= tiles - row;
    ++row;
  }
  *ti = row;
  *tj = row + index;
}

// Arguments t beyond which exp(-t) is exactly zero in T (float: e^-104 < 2^-150; double:
// e^-745.2 < 2^-1075, below half the smallest subnormal), so skipping those kernel terms leaves
// every sum bit-identical. tests/gen/fused_entropy_plan_test.cc checks both.
template <typename T>
PSAQ_HOST_DEVICE constexpr T ExpUnderflowArgument();
template <>
PSAQ_HOST_DEVICE constexpr float ExpUnderflowArgument<float>() {
  return 104.0f;
}
template <>
PSAQ_HOST_DEVICE constexpr double ExpUnderflowArgument<double>() {
  return 745.2;
}

}  // namespace psaq::gen
