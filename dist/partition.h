// Splitting work over ranks and deriving reproducible seeds. Pure functions: no MPI, no state.
//
//   const Range mine = ShardRange(num_samples, comm.size(), comm.rank());
//   for (int64_t i = mine.begin; i < mine.end; ++i) {
//     gen.set_current_seed(DeriveSeed(job_seed, kSampleStream, i));   // same on any world size
//   }
//
// Seeding per sample index (not per rank) makes a run's samples independent of how many ranks
// produced them: sample i is the same whether the job ran on 1 or 64 ranks.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace psaq::dist {

// The half-open index range [begin, end) a rank owns.
struct Range {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
  bool empty() const { return end <= begin; }
};

// Even contiguous split of [0, total) over `world_size` ranks: every rank gets total / world_size
// items and the first total % world_size ranks one more, so sizes differ by at most one and the
// ranges, in rank order, tile [0, total) exactly. Ranks past `total` get an empty range.
// REQUIRES: total >= 0, world_size >= 1, 0 <= rank < world_size (TORCH_CHECK, throws c10::Error).
Range ShardRange(int64_t total, int world_size, int rank);

// This rank's batches: ShardRange(num_samples, world_size, rank) cut into (first global index,
// count) chunks of batch_size; the last may be smaller. REQUIRES: batch_size >= 1 (TORCH_CHECK).
std::vector<std::pair<int64_t, int64_t>> ShardBatches(int64_t num_samples, int world_size,
                                                      int rank, int64_t batch_size);

// The splitmix64 output function (Steele, Lea, Flood, "Fast splittable pseudorandom number
// generators", OOPSLA 2014; constants from Vigna's reference splitmix64.c): adds the golden-ratio
// increment to `x` and mixes. A bijection on 64-bit integers with full avalanche.
// SplitMix64(s + k * 0x9E3779B97F4A7C15) is output k (from 0) of the reference generator seeded
// with s.
uint64_t SplitMix64(uint64_t x);

// A seed for the `index`-th draw of the random stream `stream` of a job seeded with `job_seed`:
// SplitMix64(SplitMix64(SplitMix64(job_seed) ^ stream) ^ index).
// Deterministic on every platform and rank. Since SplitMix64 is a bijection, for a fixed
// (job_seed, stream) distinct indices give distinct seeds, and likewise distinct streams give
// distinct inner states; across different streams a collision has probability ~2^-64.
// `stream` names a purpose (e.g. one value for per-rank generators, another for per-sample
// noise) so that the same index used for two purposes does not yield the same seed.
uint64_t DeriveSeed(uint64_t job_seed, uint64_t stream, uint64_t index);

}  // namespace psaq::dist
