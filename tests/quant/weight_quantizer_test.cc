#include "quant/weight_quantizer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "quant/uniform.h"
#include "tests/testing/tensor_near.h"

namespace psaq::quant {
namespace {

TEST(FrozenWeightQuantizerTest, ReproducesTheLivePathBitForBit) {
  at::manual_seed(5);
  for (int bits : {2, 3, 4, 8}) {
    const at::Tensor w = at::randn({12, 3, 2, 2}) * 0.05;
    MinMaxWeightQuantizer live(bits, std::make_unique<PerChannelGranularity>());
    const UniformGrid grid = live.Grid(w);
    const at::Tensor codes = QuantizeToGrid(w, grid).to(at::kChar);
    FrozenWeightQuantizer frozen(bits, codes, grid.scale);
    const at::Tensor expected = live.FakeQuantize(w);
    // The frozen quantizer ignores its input's values (only the shape and dtype matter).
    EXPECT_TENSOR_IDENTICAL(frozen.FakeQuantize(at::zeros_like(w)), expected);
  }
}

TEST(FrozenWeightQuantizerTest, RederivingScalesFromDequantizedWeightsWouldDrift) {
  // Why imports use the stored scales: a = 1 gives s = 1/127.5, the max maps to 127.5 -> 127, so
  // max|Ŵ| = 127 s and the re-derived scale is 127 s / 127.5 != s.
  const at::Tensor w = at::tensor({1.0f, -0.5f}).reshape({1, 2});
  MinMaxWeightQuantizer live(8, std::make_unique<PerChannelGranularity>());
  const at::Tensor dequantized = live.FakeQuantize(w);
  EXPECT_FALSE(at::equal(live.Grid(dequantized).scale, live.Grid(w).scale));
}

TEST(FrozenWeightQuantizerTest, GradientIsIdentityToTheParameter) {
  const at::Tensor codes = at::tensor({1, -2, 0, 1}, at::kChar).reshape({2, 2});
  const at::Tensor scale = at::tensor({0.5f, 2.0f}).reshape({2, 1});
  FrozenWeightQuantizer frozen(2, codes, scale);
  const at::Tensor w = at::zeros({2, 2}).requires_grad_(true);
  const at::Tensor out = frozen.FakeQuantize(w);
  EXPECT_TENSOR_IDENTICAL(out.detach(), at::tensor({0.5f, -1.0f, 0.0f, 2.0f}).reshape({2, 2}));
  out.sum().backward();
  EXPECT_TENSOR_IDENTICAL(w.grad(), at::ones({2, 2}));
}

TEST(FrozenWeightQuantizerTest, RejectsInconsistentArguments) {
  const at::Tensor scale = at::ones({2, 1});
  // 8 does not fit 4 bits ([-8, 7]); -3 does not fit 2 bits ([-2, 1]).
  EXPECT_THROW(FrozenWeightQuantizer(4, at::full({2, 3}, 8, at::kChar), scale), c10::Error);
  EXPECT_THROW(FrozenWeightQuantizer(2, at::full({2, 3}, -3, at::kChar), scale), c10::Error);
  EXPECT_THROW(FrozenWeightQuantizer(4, at::zeros({2, 3}), scale), c10::Error);  // float codes
  EXPECT_THROW(FrozenWeightQuantizer(4, at::zeros({2, 3}, at::kChar), at::ones({3, 1})),
               c10::Error);
  EXPECT_THROW(FrozenWeightQuantizer(4, at::zeros({2, 3}, at::kChar), at::zeros({2, 1})),
               c10::Error);
  EXPECT_THROW(FrozenWeightQuantizer(kBitsOff, at::zeros({2, 3}, at::kChar), scale), c10::Error);
  FrozenWeightQuantizer ok(4, at::zeros({2, 3}, at::kChar), scale);
  EXPECT_THROW(ok.FakeQuantize(at::zeros({3, 2})), c10::Error);
  EXPECT_THROW(ok.FakeQuantize(at::zeros({2, 3}, at::kDouble)), c10::Error);
}

TEST(PerChannelGranularityTest, ParamShapeAndMinMax) {
  PerChannelGranularity g;
  EXPECT_EQ(g.ParamShape({4, 3, 2, 2}), (std::vector<int64_t>{4, 1, 1, 1}));
  EXPECT_EQ(g.ParamShape({5, 7}), (std::vector<int64_t>{5, 1}));
  EXPECT_THROW(g.ParamShape({}), c10::Error);
  const at::Tensor x = at::tensor({1.f, -2.f, 3.f, 0.5f, 0.25f, -0.75f}).reshape({2, 3});
  auto [min, max] = g.MinMax(x);
  EXPECT_TENSOR_IDENTICAL(min, at::tensor({-2.f, -0.75f}).reshape({2, 1}));
  EXPECT_TENSOR_IDENTICAL(max, at::tensor({3.f, 0.5f}).reshape({2, 1}));
  EXPECT_EQ(ParseGranularity(GranularityName(GranularityKind::kPerChannel)),
            GranularityKind::kPerChannel);
  EXPECT_THROW(ParseGranularity("per_tensor"), std::invalid_argument);
}

}  // namespace
}  // namespace psaq::quant
