// Tensor comparisons that say where and by how much they differ.
#pragma once

#include <ATen/core/Tensor.h>
#include <gtest/gtest.h>

#include <string>

namespace psaq::testing {

struct TensorDiff {
  double max_abs_error = 0;  // max |actual - expected|
  double max_abs_ref = 0;    // max |expected|
  double ratio = 0;          // max_abs_error / max(max_abs_ref, tiny)
  int64_t worst_index = -1;  // flat index of the largest error
  std::string Describe() const;
};

// Compares in float64. REQUIRES: same number of elements (shapes may differ only by views).
TensorDiff CompareTensors(const at::Tensor& actual, const at::Tensor& expected);

// Passes when shapes are equal and max|a - e| / max|e| <= rel_tol; the failure message names
// `what`, both shapes, the max abs error, the max reference and the worst index with both values.
::testing::AssertionResult TensorsNearRel(const at::Tensor& actual, const at::Tensor& expected,
                                          double rel_tol, const std::string& what = "tensor");
// Elementwise bit-identical (same shape, dtype and values; NaNs equal).
::testing::AssertionResult TensorsIdentical(const at::Tensor& actual, const at::Tensor& expected,
                                            const std::string& what = "tensor");

// The golden-fixture directory: $PSAQ_GOLDEN_DIR when set, else tests/data/golden.
std::string GoldenDir();

}  // namespace psaq::testing

#define EXPECT_TENSOR_NEAR_REL(actual, expected, tol) \
  EXPECT_TRUE(::psaq::testing::TensorsNearRel((actual), (expected), (tol), #actual))
#define EXPECT_TENSOR_IDENTICAL(actual, expected) \
  EXPECT_TRUE(::psaq::testing::TensorsIdentical((actual), (expected), #actual))
