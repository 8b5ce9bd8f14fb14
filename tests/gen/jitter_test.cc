#include "gen/jitter.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "tests/testing/tensor_near.h"

namespace psaq::gen {
namespace {

int64_t Mod(int64_t a, int64_t n) { return ((a % n) + n) % n; }

// out[b][c][i][j] = x[b][c][(i - o) mod H][(j' - o) mod W], j' = W-1-j when flipped.
at::Tensor LoopJitter(const at::Tensor& x, int64_t o, bool flip) {
  at::Tensor out = at::empty_like(x);
  const int64_t h = x.size(2), w = x.size(3);
  auto xa = x.accessor<double, 4>();
  auto oa = out.accessor<double, 4>();
  for (int64_t b = 0; b < x.size(0); ++b) {
    for (int64_t c = 0; c < x.size(1); ++c) {
      for (int64_t i = 0; i < h; ++i) {
        for (int64_t j = 0; j < w; ++j) {
          const int64_t jj = flip ? w - 1 - j : j;
          oa[b][c][i][j] = xa[b][c][Mod(i - o, h)][Mod(jj - o, w)];
        }
      }
    }
  }
  return out;
}

at::Tensor Ramp() { return at::arange(2 * 2 * 4 * 5, at::kDouble).view({2, 2, 4, 5}); }

TEST(JitterTest, RollsHAndWBySameOffsetThenFlipsW) {
  const at::Tensor x = Ramp();
  for (int64_t o : {-3, -1, 0, 1, 2, 7}) {
    for (bool flip : {false, true}) {
      EXPECT_TENSOR_IDENTICAL(ApplyJitter(x, JitterDraw{o, flip}), LoopJitter(x, o, flip))
          << "offset " << o << " flip " << flip;
    }
  }
}

TEST(JitterTest, GradientIsTheInverseJitter) {
  at::manual_seed(1);
  const at::Tensor w = at::randn({2, 2, 4, 5}, at::kDouble);
  at::Tensor x = Ramp().requires_grad_(true);
  (ApplyJitter(x, JitterDraw{2, true}) * w).sum().backward();
  // Undo the flip, then roll back.
  EXPECT_TENSOR_IDENTICAL(x.grad(), at::roll(at::flip(w, {3}), {-2, -2}, {2, 3}));
}

TEST(JitterTest, DrawsAreReproducibleInRangeAndUseTwoValues) {
  const JitterOptions options{3, 0.5};
  std::mt19937_64 a(123), b(123), c(124);
  std::set<int64_t> seen;
  int flips = 0, differ = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const JitterDraw da = DrawJitter(a, options);
    const JitterDraw db = DrawJitter(b, options);
    const JitterDraw dc = DrawJitter(c, options);
    EXPECT_EQ(da.offset, db.offset);
    EXPECT_EQ(da.flip, db.flip);
    differ += (da.offset != dc.offset || da.flip != dc.flip) ? 1 : 0;
    EXPECT_GE(da.offset, -3);
    EXPECT_LE(da.offset, 3);
    seen.insert(da.offset);
    flips += da.flip ? 1 : 0;
  }
  EXPECT_EQ(seen.size(), 7u);           // every offset in [-3, 3] occurs
  EXPECT_NEAR(flips, n / 2, 0.05 * n);  // p = 0.5 (fixed seed: deterministic)
  EXPECT_GT(differ, n / 2);

  std::mt19937_64 d(9), e(9);
  DrawJitter(d, options);
  e.discard(2);
  EXPECT_EQ(d(), e());
}

TEST(JitterTest, RandomJitterAppliesItsDraw) {
  std::mt19937_64 a(5), b(5);
  const JitterOptions options{30, 0.5};
  const at::Tensor x = Ramp();
  for (int i = 0; i < 10; ++i) {
    JitterDraw draw;
    const at::Tensor y = RandomJitter(x, a, options, &draw);
    const JitterDraw expected = DrawJitter(b, options);
    EXPECT_EQ(draw.offset, expected.offset);
    EXPECT_EQ(draw.flip, expected.flip);
    EXPECT_TENSOR_IDENTICAL(y, ApplyJitter(x, expected));
  }
}

TEST(JitterTest, FlipProbabilityExtremesAndZeroLimit) {
  std::mt19937_64 rng(77);
  for (int i = 0; i < 100; ++i) {
    EXPECT_FALSE(DrawJitter(rng, JitterOptions{0, 0.0}).flip);
    EXPECT_TRUE(DrawJitter(rng, JitterOptions{0, 1.0}).flip);
    EXPECT_EQ(DrawJitter(rng, JitterOptions{0, 0.5}).offset, 0);
  }
  EXPECT_THROW(DrawJitter(rng, JitterOptions{-1, 0.5}), c10::Error);
  EXPECT_THROW(DrawJitter(rng, JitterOptions{1, 1.5}), c10::Error);
  EXPECT_THROW(ApplyJitter(at::zeros({2, 3, 4}), JitterDraw{}), c10::Error);
}

TEST(JitterTest, LimitScalesWithImageSize) {
  EXPECT_EQ(ScaleJitterLimit(kJitterLimitEpoch1, 224), 15);
  EXPECT_EQ(ScaleJitterLimit(kJitterLimitEpoch2, 224), 30);
  EXPECT_EQ(ScaleJitterLimit(kJitterLimitEpoch1, 28), 2);   // 1.875
  EXPECT_EQ(ScaleJitterLimit(kJitterLimitEpoch2, 28), 4);   // 3.75
  EXPECT_EQ(ScaleJitterLimit(kJitterLimitEpoch1, 112), 8);  // 7.5, half away from zero
  EXPECT_EQ(ScaleJitterLimit(kJitterLimitEpoch2, 32), 4);   // 4.29
  EXPECT_EQ(ScaleJitterLimit(kJitterLimitEpoch1, 4), 1);    // 0.27, at least 1
  EXPECT_EQ(ScaleJitterLimit(0, 224), 0);
  EXPECT_THROW(ScaleJitterLimit(15, 0), c10::Error);
  EXPECT_THROW(ScaleJitterLimit(-1, 224), c10::Error);
}

}  // namespace
}  // namespace psaq::gen
