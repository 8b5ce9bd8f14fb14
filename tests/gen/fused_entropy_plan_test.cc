// Shape logic of the CUDA launch plan (gen/fused_entropy_plan.h), checked on the CPU: every
// ordered pair of every window is counted exactly once by the kPairs blocks, every row is owned
// by exactly one kRows block, and the limits (shared memory, grid size, G) hold.
#include "gen/fused_entropy_plan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <stdexcept>
#include <tuple>
#include <utility>
#include <vector>

namespace psaq::gen {
namespace {

FusedKdeProblem Problem(int64_t windows, int64_t tokens, int64_t dim, int64_t images,
                        int64_t element_bytes = 8, int64_t grid_points = 10) {
  FusedKdeProblem p;
  p.windows = windows;
  p.tokens = tokens;
  p.dim = dim;
  p.images = images;
  p.grid_points = grid_points;
  p.element_bytes = element_bytes;
  return p;
}

TEST(FusedEntropyPlanTest, TilePairIndexEnumeratesTheUpperTriangleInRowMajorOrder) {
  for (int64_t tiles = 1; tiles <= 40; ++tiles) {
    std::vector<std::pair<int64_t, int64_t>> expected;
    for (int64_t a = 0; a < tiles; ++a) {
      for (int64_t b = a; b < tiles; ++b) expected.emplace_back(a, b);
    }
    ASSERT_EQ(static_cast<int64_t>(expected.size()), tiles * (tiles + 1) / 2);
    for (size_t index = 0; index < expected.size(); ++index) {
      int64_t ti = -1, tj = -1;
      TilePairFromIndex(static_cast<int64_t>(index), tiles, &ti, &tj);
      EXPECT_EQ(std::make_pair(ti, tj), expected[index]) << "tiles " << tiles << " index " << index;
    }
  }
}

// Simulates the kPairs blocks as the kernels walk them: (window, i, j) -> summed weight.
std::map<std::tuple<int64_t, int64_t, int64_t>, int> PairWeights(const FusedKdePlan& plan) {
  const FusedKdeLaunch& l = plan.pairs;
  std::map<std::tuple<int64_t, int64_t, int64_t>, int> weight;
  for (int64_t block = 0; block < l.blocks; ++block) {
    const int64_t window = block / l.blocks_per_window;
    int64_t ti = 0, tj = 0;
    TilePairFromIndex(block % l.blocks_per_window, l.tiles, &ti, &tj);
    for (int64_t e = 0; e < l.tile * l.tile; ++e) {
      const int64_t i = ti * l.tile + e / l.tile, j = tj * l.tile + e % l.tile;
      if (i >= plan.problem.tokens || j >= plan.problem.tokens) continue;
      const int w = ti == tj ? 1 : 2;
      weight[{window, i, j}] += w;  // stands for (i, j) and, off the diagonal tiles, (j, i)
    }
  }
  return weight;
}

TEST(FusedEntropyPlanTest, PairBlocksCountEveryOrderedPairExactlyOnce) {
  for (int64_t tokens : {1, 2, 15, 16, 17, 31, 48, 49, 100}) {
    for (int64_t dim : {1, 3, 64}) {
      const FusedKdeProblem p = Problem(/*windows=*/3, tokens, dim, /*images=*/3);
      const FusedKdePlan plan = PlanFusedKde(p);
      // weight(i, j) as launched, plus the mirrored pairs of off-diagonal tiles.
      std::map<std::tuple<int64_t, int64_t, int64_t>, int> count;
      for (const auto& [key, w] : PairWeights(plan)) {
        const auto [window, i, j] = key;
        const int64_t ti = i / plan.pairs.tile, tj = j / plan.pairs.tile;
        count[{window, i, j}] += 1;
        if (ti != tj) count[{window, j, i}] += w - 1;
      }
      ASSERT_EQ(static_cast<int64_t>(count.size()), p.windows * tokens * tokens)
          << "tokens " << tokens << " dim " << dim;
      int64_t total_weight = 0;
      for (const auto& [key, c] : count) {
        EXPECT_EQ(c, 1) << "tokens " << tokens << " pair " << std::get<1>(key) << ","
                        << std::get<2>(key);
      }
      for (const auto& [key, w] : PairWeights(plan)) total_weight += w;
      EXPECT_EQ(total_weight, p.windows * tokens * tokens);  // = B * M
      EXPECT_EQ(FusedKdeValuesPerImage(p), tokens * tokens);
    }
  }
}

TEST(FusedEntropyPlanTest, RowBlocksOwnEveryRowOnceAndVisitEveryColumnTile) {
  for (int64_t tokens : {1, 7, 16, 48, 196}) {
    const FusedKdeProblem p = Problem(/*windows=*/4, tokens, /*dim=*/32, /*images=*/2, 4);
    const FusedKdePlan plan = PlanFusedKde(p);
    const FusedKdeLaunch& l = plan.rows;
    EXPECT_EQ(l.blocks, p.windows * l.tiles);
    EXPECT_GE(l.tiles * l.tile, tokens);
    EXPECT_LT((l.tiles - 1) * l.tile, tokens);
    std::set<std::pair<int64_t, int64_t>> rows;
    for (int64_t block = 0; block < l.blocks; ++block) {
      const int64_t window = block / l.tiles, ti = block % l.tiles;
      EXPECT_EQ(window / (p.windows / p.images), window * p.images / p.windows);
      for (int64_t r = 0; r < l.tile; ++r) {
        if (ti * l.tile + r < tokens) {
          EXPECT_TRUE(rows.insert({window, ti * l.tile + r}).second);
        }
      }
    }
    EXPECT_EQ(static_cast<int64_t>(rows.size()), p.windows * tokens);
  }
}

TEST(FusedEntropyPlanTest, SharedMemoryStaysWithinTheLimitAndTilesShrinkForWideRows) {
  // Hand-computed boundaries of T = 16 with 48 KiB (see the header): float64 186 / 118.
  EXPECT_EQ(PlanFusedKde(Problem(2, 48, 186, 2)).pairs.tile, 16);
  EXPECT_EQ(PlanFusedKde(Problem(2, 48, 187, 2)).pairs.tile, 8);
  EXPECT_EQ(PlanFusedKde(Problem(2, 48, 118, 2)).rows.tile, 16);
  EXPECT_EQ(PlanFusedKde(Problem(2, 48, 119, 2)).rows.tile, 8);
  EXPECT_EQ(PlanFusedKde(Problem(2, 48, 373, 2, 4)).pairs.tile, 16);
  EXPECT_EQ(PlanFusedKde(Problem(2, 48, 243, 2, 4)).rows.tile, 16);
  EXPECT_EQ(PlanFusedKde(Problem(2, 48, 244, 2, 4)).rows.tile, 8);
  EXPECT_NO_THROW(PlanFusedKde(Problem(3, 196, 2000, 1, 4)));
  EXPECT_THROW(PlanFusedKde(Problem(3, 196, 2000, 1, 8)), std::invalid_argument);  // 1 row > 48K
  for (int64_t dim : {1, 16, 64, 100, 500, 1000}) {
    for (int64_t bytes : {4, 8}) {
      const FusedKdePlan plan = PlanFusedKde(Problem(3, 196, dim, 1, bytes));
      for (const FusedKdeLaunch* l : {&plan.pairs, &plan.rows}) {
        EXPECT_LE(l->shared_bytes + kFusedKdeStaticSharedBytes, kFusedKdeSharedBytes) << dim;
        EXPECT_EQ(l->shared_bytes, FusedKdeSharedBytes(plan.problem, l->pass, l->tile));
        EXPECT_EQ(l->threads, kFusedKdeThreads);
        EXPECT_EQ(l->row_stride, dim + 1);
        EXPECT_GE(l->tile, 1);
        EXPECT_LE(l->tile, 16);
      }
      EXPECT_EQ(plan.workspace_bytes, plan.pairs.blocks * 10 * 8);
    }
  }
  // Swin stage 1 at batch 32 in float32: T = 16, 3 tiles, 6 tile pairs per window.
  const FusedKdePlan swin = PlanFusedKde(Problem(32 * 64, 48, 32, 32, 4));
  EXPECT_EQ(swin.pairs.tile, 16);
  EXPECT_EQ(swin.pairs.blocks_per_window, 6);
  EXPECT_EQ(swin.pairs.blocks, 32 * 64 * 6);
  EXPECT_EQ(swin.rows.blocks, 32 * 64 * 3);
}

TEST(FusedEntropyPlanTest, RejectsInvalidProblemsAndLimits) {
  EXPECT_THROW(PlanFusedKde(Problem(0, 4, 4, 1)), std::invalid_argument);
  EXPECT_THROW(PlanFusedKde(Problem(3, 4, 4, 2)), std::invalid_argument);  // 3 % 2 != 0
  EXPECT_THROW(PlanFusedKde(Problem(2, 0, 4, 1)), std::invalid_argument);
  EXPECT_THROW(PlanFusedKde(Problem(2, 4, 0, 1)), std::invalid_argument);
  EXPECT_THROW(PlanFusedKde(Problem(2, 4, 4, 1, 2)), std::invalid_argument);  // half
  EXPECT_THROW(PlanFusedKde(Problem(2, 4, 4, 1, 8, 1)), std::invalid_argument);
  EXPECT_THROW(PlanFusedKde(Problem(2, 4, 4, 1, 8, kFusedKdeMaxGridPoints + 1)),
               std::invalid_argument);
  EXPECT_NO_THROW(PlanFusedKde(Problem(2, 4, 4, 1, 8, kFusedKdeMaxGridPoints)));
  EXPECT_THROW(PlanFusedKde(Problem(2, 4, 4000, 1, 8)), std::invalid_argument);  // one row > 48K
  EXPECT_THROW(PlanFusedKde(Problem(2, 4, 64, 1), /*shared_bytes_limit=*/1024),
               std::invalid_argument);
  // 2^31 blocks: 2^20 windows of 2^12 tiles pairs (N' = 16 * 90 gives 90 * 91 / 2 = 4095).
  EXPECT_THROW(PlanFusedKde(Problem(int64_t{1} << 20, 16 * 90, 4, 1, 4)), std::invalid_argument);
  EXPECT_NO_THROW(PlanFusedKde(Problem(int64_t{1} << 18, 16 * 90, 4, 1, 4)));
}

TEST(FusedEntropyPlanTest, ExpUnderflowArgumentsAreWhereExpIsExactlyZero) {
  // Skipping terms beyond the cutoff must not change any sum: exp(-cutoff) is +0 already ...
  EXPECT_EQ(std::exp(-ExpUnderflowArgument<double>()), 0.0);
  EXPECT_EQ(std::exp(-ExpUnderflowArgument<float>()), 0.0f);
  // ... while the cutoff is not far out: 1 below it exp is still a (subnormal) positive number.
  EXPECT_GT(std::exp(-(ExpUnderflowArgument<double>() - 1.0)), 0.0);
  EXPECT_GT(std::exp(-(ExpUnderflowArgument<float>() - 1.0f)), 0.0f);
}

}  // namespace
}  // namespace psaq::gen
