#include "dist/partition.h"

#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <bitset>
#include <cstdint>
#include <unordered_set>
#include <vector>

namespace psaq::dist {
namespace {

TEST(ShardRangeTest, TenOverThreeGivesTheRemainderToTheFirstRank) {
  const Range r0 = ShardRange(10, 3, 0), r1 = ShardRange(10, 3, 1), r2 = ShardRange(10, 3, 2);
  EXPECT_EQ(r0.begin, 0);
  EXPECT_EQ(r0.end, 4);
  EXPECT_EQ(r1.begin, 4);
  EXPECT_EQ(r1.end, 7);
  EXPECT_EQ(r2.begin, 7);
  EXPECT_EQ(r2.end, 10);
}

TEST(ShardRangeTest, RangesTileTheIndexSpaceWithSizesWithinOne) {
  for (int64_t total : {0, 1, 2, 5, 7, 64, 1000, 1001}) {
    for (int world : {1, 2, 3, 4, 7, 8, 64}) {
      int64_t expected_begin = 0;
      int64_t min_size = total, max_size = 0;
      for (int rank = 0; rank < world; ++rank) {
        const Range r = ShardRange(total, world, rank);
        EXPECT_EQ(r.begin, expected_begin) << "total " << total << " world " << world;
        EXPECT_GE(r.size(), 0);
        min_size = std::min(min_size, r.size());
        max_size = std::max(max_size, r.size());
        // Larger shards come first.
        if (rank > 0) {
          EXPECT_LE(r.size(), ShardRange(total, world, rank - 1).size());
        }
        expected_begin = r.end;
      }
      EXPECT_EQ(expected_begin, total) << "total " << total << " world " << world;
      EXPECT_LE(max_size - min_size, 1) << "total " << total << " world " << world;
    }
  }
}

TEST(ShardRangeTest, RanksBeyondTheItemsGetEmptyRanges) {
  const Range r = ShardRange(2, 4, 3);
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.begin, 2);
  EXPECT_EQ(r.end, 2);
  EXPECT_EQ(ShardRange(2, 4, 1).size(), 1);
}

TEST(ShardRangeTest, HandlesTotalsBeyondThirtyTwoBits) {
  const int64_t total = (int64_t{1} << 40) + 5;
  const Range last = ShardRange(total, 8, 7);
  EXPECT_EQ(last.end, total);
  EXPECT_EQ(last.size(), (int64_t{1} << 37));
  EXPECT_EQ(ShardRange(total, 8, 0).size(), (int64_t{1} << 37) + 1);
}

TEST(ShardRangeTest, BadArgumentsThrow) {
  EXPECT_THROW(ShardRange(-1, 2, 0), c10::Error);
  EXPECT_THROW(ShardRange(10, 0, 0), c10::Error);
  EXPECT_THROW(ShardRange(10, 2, 2), c10::Error);
  EXPECT_THROW(ShardRange(10, 2, -1), c10::Error);
}

// Vigna's reference splitmix64.c seeded with 1234567 produces these first five outputs
// (the published test vector; also reproduced independently in Python).
TEST(SplitMix64Test, MatchesTheReferenceGeneratorSequence) {
  constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ull;
  const uint64_t expected[] = {6457827717110365317ull, 3203168211198807973ull,
                               9817491932198370423ull, 4593380528125082431ull,
                               16408922859458223821ull};
  for (uint64_t k = 0; k < 5; ++k) {
    EXPECT_EQ(SplitMix64(1234567ull + k * kGamma), expected[k]) << "output " << k;
  }
}

TEST(DeriveSeedTest, IsDeterministicAndDependsOnEveryArgument) {
  const uint64_t s = DeriveSeed(42, 1, 7);
  EXPECT_EQ(s, DeriveSeed(42, 1, 7));
  EXPECT_EQ(s, SplitMix64(SplitMix64(SplitMix64(42) ^ 1) ^ 7));
  EXPECT_NE(s, DeriveSeed(43, 1, 7));
  EXPECT_NE(s, DeriveSeed(42, 2, 7));
  EXPECT_NE(s, DeriveSeed(42, 1, 8));
  // Swapping stream and index must not collide (a plain XOR of the inputs would).
  EXPECT_NE(DeriveSeed(42, 1, 2), DeriveSeed(42, 2, 1));
}

TEST(DeriveSeedTest, NoCollisionsOverStreamsAndIndices) {
  std::unordered_set<uint64_t> seen;
  constexpr int kStreams = 8, kIndices = 20000;
  for (uint64_t stream = 0; stream < kStreams; ++stream) {
    for (uint64_t index = 0; index < kIndices; ++index)
      seen.insert(DeriveSeed(2024, stream, index));
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kStreams * kIndices));
}

// Neighbouring indices must give unrelated seeds: on average half of the 64 bits differ.
// For independent uniform bits the mean Hamming distance over n = 20000 pairs is 32 with a
// standard deviation of sqrt(16 / n) = 0.028; the tolerance is ~18 standard deviations.
TEST(DeriveSeedTest, NeighbouringIndicesDifferInHalfTheBits) {
  constexpr double kMeanBitsTolerance = 0.5;
  constexpr int kPairs = 20000;
  double total_bits = 0;
  for (uint64_t index = 0; index < kPairs; ++index) {
    total_bits += std::bitset<64>(DeriveSeed(7, 3, index) ^ DeriveSeed(7, 3, index + 1)).count();
  }
  EXPECT_NEAR(total_bits / kPairs, 32.0, kMeanBitsTolerance);
  // The same for neighbouring job seeds (rank- or run-level seeds).
  total_bits = 0;
  for (uint64_t job = 0; job < kPairs; ++job) {
    total_bits += std::bitset<64>(DeriveSeed(job, 0, 0) ^ DeriveSeed(job + 1, 0, 0)).count();
  }
  EXPECT_NEAR(total_bits / kPairs, 32.0, kMeanBitsTolerance);
}

}  // namespace
}  // namespace psaq::dist
