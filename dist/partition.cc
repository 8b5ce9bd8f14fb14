#include "dist/partition.h"

#include <c10/util/Exception.h>

#include <algorithm>

namespace psaq::dist {

Range ShardRange(int64_t total, int world_size, int rank) {
  TORCH_CHECK(total >= 0, "ShardRange: total must be >= 0, got ", total);
  TORCH_CHECK(world_size >= 1, "ShardRange: world_size must be >= 1, got ", world_size);
  TORCH_CHECK(rank >= 0 && rank < world_size, "ShardRange: rank ", rank, " is outside [0, ",
              world_size, ")");
  const int64_t base = total / world_size;
  const int64_t extra = total % world_size;
  // The first `extra` ranks own base + 1 items; every later rank is shifted by all of `extra`.
  const int64_t r = rank;
  Range range;
  range.begin = r * base + (r < extra ? r : extra);
  range.end = range.begin + base + (r < extra ? 1 : 0);
  return range;
}

std::vector<std::pair<int64_t, int64_t>> ShardBatches(int64_t num_samples, int world_size,
                                                      int rank, int64_t batch_size) {
  TORCH_CHECK(batch_size >= 1, "ShardBatches: batch_size must be >= 1");
  const Range mine = ShardRange(num_samples, world_size, rank);
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int64_t first = mine.begin; first < mine.end; first += batch_size) {
    out.emplace_back(first, std::min(batch_size, mine.end - first));
  }
  return out;
}

uint64_t SplitMix64(uint64_t x) {
  uint64_t z = x + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t DeriveSeed(uint64_t job_seed, uint64_t stream, uint64_t index) {
  // Mixing between the inputs (not a plain XOR of all three) keeps (stream, index) pairs from
  // cancelling, e.g. (1, 2) and (2, 1).
  return SplitMix64(SplitMix64(SplitMix64(job_seed) ^ stream) ^ index);
}

}  // namespace psaq::dist
