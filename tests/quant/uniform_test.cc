// PSAQ's quantizer formulas pinned to hand-computed values (docs/psaq_spec.md §3.2-3.3).
// Inputs are chosen so that every scale is exact in float32; then W / s is exact and the
// expected codes follow by hand (round half to even, then clamp).
#include "quant/uniform.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "quant/activation_quantizer.h"
#include "quant/granularity.h"
#include "quant/weight_quantizer.h"
#include "tests/testing/tensor_near.h"

namespace psaq::quant {
namespace {

at::Tensor F32(const std::vector<float>& v) {
  return at::tensor(at::ArrayRef<float>(v), at::kFloat);
}

at::Tensor Rows(const std::vector<std::vector<float>>& rows) {
  std::vector<at::Tensor> ts;
  for (const auto& r : rows) ts.push_back(F32(r));
  return at::stack(ts);
}

at::Tensor FakeWeight(const at::Tensor& w, int bits) {
  MinMaxWeightQuantizer q(bits, std::make_unique<PerChannelGranularity>());
  return q.FakeQuantize(w);
}

TEST(UniformQmTest, CodeRanges) {
  EXPECT_EQ(SymmetricQMin(8), -128);
  EXPECT_EQ(SymmetricQMax(8), 127);
  EXPECT_EQ(SymmetricQMin(4), -8);
  EXPECT_EQ(SymmetricQMax(4), 7);
  EXPECT_EQ(SymmetricQMin(2), -2);
  EXPECT_EQ(SymmetricQMax(2), 1);
  EXPECT_EQ(AsymmetricQMax(8), 255);
  EXPECT_EQ(AsymmetricQMax(4), 15);
  EXPECT_EQ(AsymmetricQMax(2), 3);
}

TEST(UniformWeightTest, EightBitEdgesAndHalfToEvenTies) {
  // Row 0: a = 127.5 -> s = 1. Row 1: a = 255 -> s = 2. Row 2: all zero -> s = eps.
  const at::Tensor w = Rows({{127.5f, -127.5f, 2.5f, 3.5f, -2.5f, 63.7f},
                             {255.f, -3.f, 5.f, 7.f, 1.f, -255.f},
                             {0.f, 0.f, 0.f, 0.f, 0.f, 0.f}});
  MinMaxWeightQuantizer q(8, std::make_unique<PerChannelGranularity>());
  const UniformGrid grid = q.Grid(w);
  EXPECT_TENSOR_IDENTICAL(grid.scale, F32({1.f, 2.f, kScaleEps}).reshape({3, 1}));
  EXPECT_FALSE(grid.zero_point.defined());
  // 127.5 -> 128 -> clamp 127; -127.5 -> -128; 2.5 -> 2; 3.5 -> 4; -2.5 -> -2; 63.7 -> 64.
  // Row 1 / 2: 127.5 -> 127, -1.5 -> -2, 2.5 -> 2, 3.5 -> 4, 0.5 -> 0, -127.5 -> -128.
  EXPECT_TENSOR_IDENTICAL(
      QuantizeToGrid(w, grid),
      Rows({{127, -128, 2, 4, -2, 64}, {127, -2, 2, 4, 0, -128}, {0, 0, 0, 0, 0, 0}}));
  EXPECT_TENSOR_IDENTICAL(
      q.FakeQuantize(w),
      Rows({{127, -128, 2, 4, -2, 64}, {254, -4, 4, 8, 0, -256}, {0, 0, 0, 0, 0, 0}}));
}

TEST(UniformWeightTest, FourBitEdgesAndOneSidedRows) {
  // a = 7.5 -> s = 1; a = 15 -> s = 2 (all positive); a = max(15, -5) = 15 (all negative).
  const at::Tensor w = Rows({{7.5f, -7.5f, 0.5f, 1.5f, -6.4f},
                             {15.f, 3.f, 1.f, 5.f, 15.f},
                             {-15.f, -5.f, -1.f, -3.f, -9.f}});
  EXPECT_TENSOR_IDENTICAL(FakeWeight(w, 4),
                          Rows({{7, -8, 0, 2, -6}, {14, 4, 0, 4, 14}, {-16, -4, -0.f, -4, -8}}));
}

TEST(UniformWeightTest, TwoBit) {
  // a = 1.5 -> s = 1; codes in [-2, 1].
  const at::Tensor w = Rows({{1.5f, -1.5f, 0.4f, -0.6f, 0.5f}});
  EXPECT_TENSOR_IDENTICAL(FakeWeight(w, 2), Rows({{1, -2, 0, -1, 0}}));
}

TEST(UniformWeightTest, ConvWeightsArePerOutputChannel) {
  // [2, 1, 2, 2]: filter 0 has a = 7.5 (s = 1), filter 1 a = 30 (s = 4) at 4 bits.
  const at::Tensor w =
      Rows({{7.5f, 1.4f, -2.5f, 0.f}, {30.f, -30.f, 6.f, 10.f}}).reshape({2, 1, 2, 2});
  const at::Tensor expected =
      Rows({{7.f, 1.f, -2.f, 0.f}, {28.f, -32.f, 8.f, 8.f}}).reshape({2, 1, 2, 2});
  EXPECT_TENSOR_IDENTICAL(FakeWeight(w, 4), expected);
}

TEST(UniformWeightTest, RowsAreIndependent) {
  at::manual_seed(1);
  const at::Tensor w = at::randn({6, 10});
  const at::Tensor scaled = w.clone();
  scaled[3].mul_(1000);  // changing one row's range must not move any other row
  const at::Tensor a = FakeWeight(w, 8);
  const at::Tensor b = FakeWeight(scaled, 8);
  for (int64_t r = 0; r < 6; ++r) {
    if (r == 3) continue;
    EXPECT_TENSOR_IDENTICAL(a[r], b[r]);
  }
}

TEST(UniformWeightTest, ThirtyTwoBitsIsIdentity) {
  const at::Tensor w = at::randn({4, 5});
  MinMaxWeightQuantizer q(kBitsOff, std::make_unique<PerChannelGranularity>());
  EXPECT_FALSE(q.enabled());
  EXPECT_TRUE(q.FakeQuantize(w).is_same(w));
  ActivationQuantizer a(kBitsOff);
  EXPECT_TRUE(a.FakeQuantize(w).is_same(w));  // no range needed when off
}

TEST(UniformWeightTest, InvalidBitsThrow) {
  for (int bits : {0, 1, 9, 16, 31, 33}) {
    EXPECT_THROW(ActivationQuantizer a(bits), c10::Error) << bits;
  }
  EXPECT_THROW(SymmetricGrid(F32({1.f}), kBitsOff), c10::Error);
}

TEST(UniformActivationTest, EightBitScaleZeroPointAndEdges) {
  // [m, M] = [-1, 254]: s = 255 / 255 = 1, z = 0 - round(-1) = 1.
  ActivationQuantizer q(8);
  q.SetRange(-1.0, 254.0);
  const UniformGrid grid = q.Grid(at::kFloat);
  EXPECT_EQ(grid.scale.item<float>(), 1.f);
  EXPECT_EQ(grid.zero_point.item<float>(), 1.f);
  // x / s + z = [0, -1, 1, 1.5, 2.5, 255, 256, 301] -> round -> clamp [0, 255] -> minus z.
  const at::Tensor x = F32({-1.f, -2.f, 0.f, 0.5f, 1.5f, 254.f, 255.f, 300.f});
  EXPECT_TENSOR_IDENTICAL(q.FakeQuantize(x), F32({-1, -1, 0, 1, 1, 254, 254, 254}));
}

TEST(UniformActivationTest, EightBitNonTrivialScaleFollowsFloat32Ops) {
  ActivationQuantizer q(8);
  q.SetRange(-0.5, 1.0);
  const UniformGrid grid = q.Grid(at::kFloat);
  const float s = (1.0f - (-0.5f)) / 255.0f;  // float32 ops, as PSAQ's float32 buffers
  EXPECT_EQ(grid.scale.item<float>(), s);
  EXPECT_EQ(grid.zero_point.item<float>(), 0.0f - std::nearbyint(-0.5f / s));
  EXPECT_EQ(grid.zero_point.item<float>(), 85.f);
}

TEST(UniformActivationTest, FourBit) {
  // [-3, 12]: s = 1, z = 3. x + 3 = [-1, 0, 3, 15, 16, 5.5] -> [0, 0, 3, 15, 15, 6] - 3.
  ActivationQuantizer q(4);
  q.SetRange(-3.0, 12.0);
  EXPECT_TENSOR_IDENTICAL(q.FakeQuantize(F32({-4.f, -3.f, 0.f, 12.f, 13.f, 2.5f})),
                          F32({-3, -3, 0, 12, 12, 3}));
}

TEST(UniformActivationTest, ZeroPointClampsWhenRangeExcludesZero) {
  // min > 0: [2, 17] -> s = 1, z = clamp(-2, 0, 15) = 0, so codes cover [0, 15].
  ActivationQuantizer pos(4);
  pos.SetRange(2.0, 17.0);
  EXPECT_EQ(pos.Grid(at::kFloat).zero_point.item<float>(), 0.f);
  EXPECT_TENSOR_IDENTICAL(pos.FakeQuantize(F32({2.f, 0.f, 20.f, -1.f})), F32({2, 0, 15, 0}));
  // max < 0: [-17, -2] -> s = 1, z = clamp(17, 0, 15) = 15, so codes cover [-15, 0].
  ActivationQuantizer neg(4);
  neg.SetRange(-17.0, -2.0);
  EXPECT_EQ(neg.Grid(at::kFloat).zero_point.item<float>(), 15.f);
  EXPECT_TENSOR_IDENTICAL(neg.FakeQuantize(F32({-2.f, -17.f, 0.f, 3.f})), F32({-2, -15, 0, 0}));
}

TEST(UniformActivationTest, TwoBit) {
  // [0, 3]: s = 1, z = 0, codes [0, 3]; 0.5 -> 0 and 2.5 -> 2 (ties to even).
  ActivationQuantizer q(2);
  q.SetRange(0.0, 3.0);
  EXPECT_TENSOR_IDENTICAL(q.FakeQuantize(F32({0.4f, 0.5f, 1.5f, 2.5f, 4.f, -1.f})),
                          F32({0, 0, 2, 2, 3, 0}));
}

TEST(UniformActivationTest, DegenerateRangeClampsScaleAtEps) {
  ActivationQuantizer q(8);
  q.SetRange(3.0, 3.0);
  const UniformGrid grid = q.Grid(at::kFloat);
  EXPECT_EQ(grid.scale.item<float>(), kScaleEps);
  EXPECT_EQ(grid.zero_point.item<float>(), 0.f);  // -round(3 / eps) clamps to 0
  EXPECT_TENSOR_IDENTICAL(q.FakeQuantize(F32({3.f})), F32({255 * kScaleEps}));
}

TEST(UniformActivationTest, NeedsARangeAndValidatesIt) {
  ActivationQuantizer q(8);
  EXPECT_FALSE(q.ready());
  EXPECT_THROW(q.FakeQuantize(F32({1.f})), c10::Error);
  EXPECT_THROW(q.SetRange(2.0, 1.0), c10::Error);
  EXPECT_THROW(q.SetRange(0.0, std::numeric_limits<double>::infinity()), c10::Error);
}

TEST(UniformSteTest, WeightGradientIsIdentity) {
  at::manual_seed(2);
  const at::Tensor w = at::randn({3, 7}).requires_grad_(true);
  const at::Tensor g = at::randn({3, 7});
  (FakeWeight(w, 4) * g).sum().backward();
  EXPECT_TENSOR_IDENTICAL(w.grad(), g);
}

TEST(UniformSteTest, ActivationGradientIsMaskedOutsideTheRange) {
  // [-1, 254], s = 1, z = 1: unclamped codes [-1, 0, -0, 255, 256, 2] -> in range [F T T T F T].
  ActivationQuantizer q(8);
  q.SetRange(-1.0, 254.0);
  const at::Tensor x = F32({-2.f, -1.f, -1.4f, 254.4f, 254.6f, 1.f}).requires_grad_(true);
  const at::Tensor g = F32({1.f, 2.f, 3.f, 4.f, 5.f, 6.f});
  (q.FakeQuantize(x) * g).sum().backward();
  EXPECT_TENSOR_IDENTICAL(x.grad(), F32({0.f, 2.f, 3.f, 4.f, 0.f, 6.f}));
}

TEST(UniformSteTest, SteForwardIsBitIdenticalToNoGradPath) {
  at::manual_seed(3);
  const at::Tensor w = at::randn({16, 33});
  const at::Tensor x = at::randn({4, 9, 16}) * 3;
  ActivationQuantizer act(6);
  act.SetRange(-2.5, 4.0);
  MinMaxWeightQuantizer wq(5, std::make_unique<PerChannelGranularity>());
  const at::Tensor w_grad = w.clone().requires_grad_(true);
  const at::Tensor x_grad = x.clone().requires_grad_(true);
  const at::Tensor w_ste = wq.FakeQuantize(w_grad);
  const at::Tensor x_ste = act.FakeQuantize(x_grad);
  EXPECT_TRUE(w_ste.requires_grad());
  EXPECT_TRUE(x_ste.requires_grad());
  EXPECT_TENSOR_IDENTICAL(w_ste.detach(), FakeQuantizeNoGrad(w, wq.Grid(w)));
  EXPECT_TENSOR_IDENTICAL(x_ste.detach(), FakeQuantizeNoGrad(x, act.Grid(x)));
}

}  // namespace
}  // namespace psaq::quant
