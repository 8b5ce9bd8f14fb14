#include "gen/fused_entropy_plan.h"

#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>

namespace psaq::gen {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::string Describe(const FusedKdeProblem& p) {
  return "windows=" + std::to_string(p.windows) + " tokens=" + std::to_string(p.tokens) +
         " dim=" + std::to_string(p.dim) + " images=" + std::to_string(p.images) +
         " grid_points=" + std::to_string(p.grid_points) +
         " element_bytes=" + std::to_string(p.element_bytes);
}

int64_t BlocksPerWindow(FusedKdePass pass, int64_t tiles) {
  return pass == FusedKdePass::kPairs ? tiles * (tiles + 1) / 2 : tiles;
}

bool Fits(const FusedKdeProblem& p, FusedKdePass pass, int64_t tile, int64_t limit) {
  return FusedKdeSharedBytes(p, pass, tile) + kFusedKdeStaticSharedBytes <= limit;
}

FusedKdeLaunch PlanPass(const FusedKdeProblem& p, FusedKdePass pass, int64_t limit) {
  // The largest tile that fits: a bigger tile reuses each row it loads into shared memory for
  // more pairs.
  int64_t tile = 0;
  for (int64_t t : {16, 8, 4, 2, 1}) {
    if (tile == 0 && Fits(p, pass, t, limit)) tile = t;
  }
  if (tile == 0) {
    throw std::invalid_argument(
        "PlanFusedKde: dim " + std::to_string(p.dim) + " needs more than " + std::to_string(limit) +
        " bytes of shared memory even with one row per tile (" + Describe(p) + ")");
  }
  FusedKdeLaunch l;
  l.pass = pass;
  l.tile = tile;
  l.tiles = CeilDiv(p.tokens, tile);
  l.blocks_per_window = BlocksPerWindow(pass, l.tiles);
  l.threads = kFusedKdeThreads;
  l.row_stride = p.dim + 1;
  l.shared_bytes = FusedKdeSharedBytes(p, pass, tile);
  // A 1-D CUDA grid holds at most 2^31 - 1 blocks.
  if (l.blocks_per_window > std::numeric_limits<int32_t>::max() / p.windows) {
    throw std::invalid_argument("PlanFusedKde: more than 2^31 - 1 blocks (" + Describe(p) + ")");
  }
  l.blocks = p.windows * l.blocks_per_window;
  return l;
}

}  // namespace

void CheckFusedKdeProblem(const FusedKdeProblem& p) {
  if (p.windows < 1 || p.tokens < 1 || p.dim < 1 || p.images < 1) {
    throw std::invalid_argument("FusedKdeProblem: every count must be >= 1 (" + Describe(p) + ")");
  }
  if (p.windows % p.images != 0) {
    throw std::invalid_argument("FusedKdeProblem: windows must be a multiple of images (" +
                                Describe(p) + ")");
  }
  if (p.grid_points < 2) {
    throw std::invalid_argument("FusedKdeProblem: grid_points must be >= 2 (" + Describe(p) + ")");
  }
  if (p.element_bytes != 4 && p.element_bytes != 8) {
    throw std::invalid_argument("FusedKdeProblem: element_bytes must be 4 or 8 (" + Describe(p) +
                                ")");
  }
  // Keeps every element count (and M) far from int64 overflow.
  constexpr int64_t kMaxCount = int64_t{1} << 31;
  if (p.windows >= kMaxCount || p.tokens >= kMaxCount || p.dim >= kMaxCount ||
      p.tokens * p.dim >= kMaxCount) {
    throw std::invalid_argument("FusedKdeProblem: sizes too large (" + Describe(p) + ")");
  }
}

int64_t FusedKdeValuesPerImage(const FusedKdeProblem& p) {
  return (p.windows / p.images) * p.tokens * p.tokens;
}

int64_t FusedKdeSharedBytes(const FusedKdeProblem& p, FusedKdePass pass, int64_t tile) {
  const int64_t tiles_elems = 2 * tile * (p.dim + 1);
  if (pass == FusedKdePass::kPairs) return tiles_elems * p.element_bytes;
  return (tiles_elems + tile * tile + tile * p.dim) * p.element_bytes;
}

FusedKdePlan PlanFusedKde(const FusedKdeProblem& problem, int64_t shared_bytes_limit) {
  CheckFusedKdeProblem(problem);
  if (problem.grid_points > kFusedKdeMaxGridPoints) {
    throw std::invalid_argument("PlanFusedKde: the kernels support at most " +
                                std::to_string(kFusedKdeMaxGridPoints) + " grid points (" +
                                Describe(problem) + ")");
  }
  FusedKdePlan plan;
  plan.problem = problem;
  plan.pairs = PlanPass(problem, FusedKdePass::kPairs, shared_bytes_limit);
  plan.rows = PlanPass(problem, FusedKdePass::kRows, shared_bytes_limit);
  // The range pass keeps a min and a max per block, the sums pass G sums: max(2, G) doubles.
  const int64_t row = problem.grid_points > 2 ? problem.grid_points : 2;
  plan.workspace_bytes = plan.pairs.blocks * row * static_cast<int64_t>(sizeof(double));
  return plan;
}

}  // namespace psaq::gen
