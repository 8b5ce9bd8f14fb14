#include "quant/fused_fake_quant.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "quant/uniform.h"
#include "tests/testing/tensor_near.h"

namespace psaq::quant {
namespace {

// Values that hit every hard case: exact ties (k + 1/2 steps), values far outside the range on
// both sides, zeros, and ordinary random values.
at::Tensor HardValues(const UniformGrid& grid, at::ScalarType dtype) {
  at::manual_seed(11);
  const double s = grid.scale.item<double>();
  const double z = grid.zero_point.defined() ? grid.zero_point.item<double>() : 0.0;
  at::Tensor k = at::arange(-300, 300, at::kDouble);
  at::Tensor ties = (k + 0.5 - z) * s;
  at::Tensor random = at::randn({4096}, at::kDouble) * (s * (grid.qmax - grid.qmin));
  at::Tensor extremes = at::tensor({-1e30, 1e30, 0.0, -0.0, s * grid.qmax, s * grid.qmin},
                                   at::kDouble);
  return at::cat({ties, random, extremes}).to(dtype).reshape({2, -1});
}

void ExpectFusedEqualsOpByOp(const UniformGrid& grid, at::ScalarType dtype) {
  const at::Tensor x = HardValues(grid, dtype);
  ASSERT_TRUE(CanFuseFakeQuantize(x, grid));
  at::Tensor mask_ref;
  const at::Tensor ref = DequantizeFromGrid(QuantizeToGrid(x, grid, &mask_ref), grid);
  at::Tensor mask;
  const at::Tensor fused = FusedFakeQuantize(x, grid, &mask);
  EXPECT_TENSOR_IDENTICAL(fused, ref);
  EXPECT_TRUE(at::equal(mask, mask_ref));
  EXPECT_TENSOR_IDENTICAL(FusedFakeQuantize(x, grid), ref);
}

TEST(FusedFakeQuantizeTest, BitIdenticalToOpByOpForActivationGrids) {
  for (at::ScalarType dtype : {at::kFloat, at::kDouble}) {
    for (int bits : {2, 3, 4, 8}) {
      const auto o = at::TensorOptions().dtype(dtype);
      // A range straddling zero, one above zero (zero point clamps to 0) and one below.
      for (auto [lo, hi] : {std::pair{-1.3, 2.9}, std::pair{0.25, 7.0}, std::pair{-5.0, -0.5}}) {
        SCOPED_TRACE(std::to_string(bits) + " bits, " + c10::toString(dtype));
        ExpectFusedEqualsOpByOp(
            AsymmetricGrid(at::scalar_tensor(lo, o), at::scalar_tensor(hi, o), bits), dtype);
      }
    }
  }
}

TEST(FusedFakeQuantizeTest, BitIdenticalToOpByOpForSymmetricPerTensorGrids) {
  for (at::ScalarType dtype : {at::kFloat, at::kDouble}) {
    for (int bits : {2, 4, 8}) {
      ExpectFusedEqualsOpByOp(SymmetricGrid(at::scalar_tensor(0.37, dtype), bits), dtype);
    }
  }
}

TEST(FusedFakeQuantizeTest, NonContiguousInputGivesTheSameValues) {
  const auto o = at::TensorOptions().dtype(at::kFloat);
  const UniformGrid grid = AsymmetricGrid(at::scalar_tensor(-1.0, o), at::scalar_tensor(3.0, o), 4);
  const at::Tensor x = at::randn({64, 32}).t();
  ASSERT_FALSE(x.is_contiguous());
  EXPECT_TENSOR_IDENTICAL(FusedFakeQuantize(x, grid),
                          DequantizeFromGrid(QuantizeToGrid(x, grid), grid));
}

TEST(FusedFakeQuantizeTest, RefusesWhatItCannotFuse) {
  const auto f = at::TensorOptions().dtype(at::kFloat);
  const UniformGrid per_tensor =
      AsymmetricGrid(at::scalar_tensor(-1.0, f), at::scalar_tensor(1.0, f), 8);
  EXPECT_FALSE(CanFuseFakeQuantize(at::zeros({4}, at::kDouble), per_tensor));  // dtype mismatch
  EXPECT_FALSE(CanFuseFakeQuantize(at::zeros({4}, at::kHalf), per_tensor));
  const UniformGrid per_channel = SymmetricGrid(at::ones({3, 1}), 8);
  EXPECT_FALSE(CanFuseFakeQuantize(at::zeros({3, 4}), per_channel));
  EXPECT_THROW(FusedFakeQuantize(at::zeros({3, 4}), per_channel), c10::Error);
}

}  // namespace
}  // namespace psaq::quant
