// The gradient comparison of the V2 equivalence MPI tests (classifier and detector): after
// StudentGradients on a sharded and a single-rank V2Rounds, every trainable parameter's
// synchronised gradient must equal the single rank's within `rel` of its max|g| (sums in another
// order); prints the worst ratio on rank 0, as "[ measured ]".
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>

#include "gen/v2_rounds.h"
#include "tests/testing/tensor_near.h"

namespace psaq::testing {

inline void ExpectSameStudentGradients(const gen::V2Rounds& sharded, const gen::V2Rounds& single,
                                       double rel, int world_size, int rank, int64_t n) {
  const auto& a = sharded.trainable_parameters();
  const auto& b = single.trainable_parameters();
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(TensorsNearRel(a[i].second.grad(), b[i].second.grad(), rel, a[i].first));
    worst = std::max(worst, CompareTensors(a[i].second.grad(), b[i].second.grad()).ratio);
  }
  if (rank == 0) {
    printf("[ measured ] world %d, %lld samples: max gradient diff / max|g| %.3g\n", world_size,
           static_cast<long long>(n), worst);
  }
}

}  // namespace psaq::testing
