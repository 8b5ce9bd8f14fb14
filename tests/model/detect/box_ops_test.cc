// Box overlaps (mmdet's bbox_overlaps), clipping, small-box filtering: hand-computed values and
// a brute-force loop.
#include "model/detect/box_ops.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "tests/testing/tensor_near.h"
#include "tests/testing/tolerances.h"

namespace psaq::detect {
namespace {

using psaq::testing::kFloat64ParityRel;

TEST(BoxIouTest, HandComputedIouAndIof) {
  const at::Tensor a = at::tensor({0.0, 0.0, 10.0, 10.0, 0.0, 0.0, 0.0, 0.0}, at::kDouble)
                           .view({2, 4});  // the second has zero area
  const at::Tensor b =
      at::tensor({5.0, 0.0, 15.0, 10.0, 20.0, 20.0, 30.0, 30.0, 0.0, 0.0, 5.0, 5.0}, at::kDouble)
          .view({3, 4});
  const at::Tensor iou = BoxIou(a, b);
  ASSERT_EQ(iou.sizes(), (at::IntArrayRef{2, 3}));
  const at::Tensor expected_iou =
      at::tensor({50.0 / 150.0, 0.0, 25.0 / 100.0, 0.0, 0.0, 0.0}, at::kDouble).view({2, 3});
  EXPECT_TENSOR_NEAR_REL(iou, expected_iou, kFloat64ParityRel);
  // iof divides by the first box's area (floored at eps for the degenerate one: 0 / eps = 0).
  const at::Tensor expected_iof =
      at::tensor({0.5, 0.0, 0.25, 0.0, 0.0, 0.0}, at::kDouble).view({2, 3});
  EXPECT_TENSOR_NEAR_REL(BoxIou(a, b, IouMode::kIof), expected_iof, kFloat64ParityRel);
  EXPECT_EQ(BoxIou(a, b.narrow(0, 0, 0)).sizes(), (at::IntArrayRef{2, 0}));
  EXPECT_EQ(BoxIou(a.narrow(0, 0, 0), b).sizes(), (at::IntArrayRef{0, 3}));
}

TEST(BoxIouTest, MatchesABruteForceLoop) {
  at::manual_seed(31);
  const at::Tensor xy = at::rand({20, 2}, at::kDouble) * 50;
  const at::Tensor a = at::cat({xy, xy + at::rand({20, 2}, at::kDouble) * 30}, 1);
  const at::Tensor xy2 = at::rand({15, 2}, at::kDouble) * 50;
  const at::Tensor b = at::cat({xy2, xy2 + at::rand({15, 2}, at::kDouble) * 30}, 1);
  const at::Tensor iou = BoxIou(a, b);
  auto A = a.accessor<double, 2>();
  auto B = b.accessor<double, 2>();
  at::Tensor expected = at::empty({20, 15}, at::kDouble);
  for (int i = 0; i < 20; ++i) {
    for (int j = 0; j < 15; ++j) {
      const double w = std::max(0.0, std::min(A[i][2], B[j][2]) - std::max(A[i][0], B[j][0]));
      const double h = std::max(0.0, std::min(A[i][3], B[j][3]) - std::max(A[i][1], B[j][1]));
      const double area_a = (A[i][2] - A[i][0]) * (A[i][3] - A[i][1]);
      const double area_b = (B[j][2] - B[j][0]) * (B[j][3] - B[j][1]);
      expected[i][j] = w * h / (area_a + area_b - w * h);
    }
  }
  EXPECT_TENSOR_NEAR_REL(iou, expected, kFloat64ParityRel);
  EXPECT_GT(iou.max().item<double>(), 0.0);
}

TEST(BoxOpsTest, ClipsToTheImageEdges) {
  const at::Tensor boxes =
      at::tensor({-5.0, -1.0, 70.0, 30.0, 10.0, 10.0, 20.0, 20.0}, at::kDouble).view({2, 4});
  const at::Tensor expected =
      at::tensor({0.0, 0.0, 64.0, 30.0, 10.0, 10.0, 20.0, 20.0}, at::kDouble).view({2, 4});
  EXPECT_TENSOR_IDENTICAL(ClipBoxes(boxes, 48, 64), expected);
  EXPECT_THROW(ClipBoxes(boxes, 0, 64), c10::Error);
}

TEST(BoxOpsTest, NonSmallBoxMaskIsStrictOnBothSides) {
  const at::Tensor boxes = at::tensor({0.f, 0.f, 4.f, 4.f,  //
                                       0.f, 0.f, 4.f, 2.f,  // height == min_size: dropped
                                       0.f, 0.f, 0.f, 9.f,  // zero width
                                       1.f, 1.f, 3.5f, 9.f})
                               .view({4, 4});
  const at::Tensor mask = NonSmallBoxMask(boxes, 2.0);
  EXPECT_TENSOR_IDENTICAL(mask, at::tensor({1, 0, 0, 1}).to(at::kBool));
  EXPECT_TENSOR_IDENTICAL(NonSmallBoxMask(boxes, 0.0), at::tensor({1, 1, 0, 1}).to(at::kBool));
  EXPECT_TENSOR_IDENTICAL(BoxArea(boxes), at::tensor({16.f, 8.f, 0.f, 20.f}));
}

TEST(BoxOpsTest, RejectsBadShapes) {
  EXPECT_THROW(BoxIou(at::rand({2, 3}), at::rand({2, 4})), c10::Error);
  EXPECT_THROW(BoxIou(at::rand({2, 4}), at::rand({2, 4}, at::kDouble)), c10::Error);
  EXPECT_THROW(BoxIou(at::ones({2, 4}, at::kInt), at::ones({2, 4}, at::kInt)), c10::Error);
  EXPECT_THROW(NonSmallBoxMask(at::rand({4}), 0.0), c10::Error);
}

}  // namespace
}  // namespace psaq::detect
