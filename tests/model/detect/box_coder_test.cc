// DeltaXYWHBBoxCoder: mmdet's own test_coder.py::test_delta_bbox_coder expectations, round
// trips, the wh clip and clipping to the image.
#include "model/detect/box_coder.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "tests/testing/tensor_near.h"
#include "tests/testing/tolerances.h"

namespace psaq::detect {
namespace {

using psaq::testing::kFloat64ParityRel;
// mmdet's test compares with atol 1e-4 against 4-decimal expectations.
constexpr double kMmdetExpectationAbs = 1e-4;

TEST(DeltaXYWHBBoxCoderTest, DecodeMatchesMmdetsTest) {
  const DeltaXYWHBBoxCoder coder;
  const at::Tensor rois =
      at::tensor({0.f, 0.f, 1.f, 1.f, 0.f, 0.f, 1.f, 1.f, 0.f, 0.f, 1.f, 1.f, 5.f, 5.f, 5.f, 5.f})
          .view({4, 4});
  const at::Tensor deltas = at::tensor({0.f, 0.f, 0.f, 0.f, 1.f, 1.f, 1.f, 1.f, 0.f, 0.f, 2.f, -1.f,
                                        0.7f, -1.9f, -0.5f, 0.3f})
                                .view({4, 4});
  const at::Tensor expected = at::tensor({0.0000f, 0.0000f, 1.0000f, 1.0000f,  //
                                          0.1409f, 0.1409f, 2.8591f, 2.8591f,  //
                                          0.0000f, 0.3161f, 4.1945f, 0.6839f,  //
                                          5.0000f, 5.0000f, 5.0000f, 5.0000f})
                                  .view({4, 4});
  const at::Tensor out = coder.Decode(rois, deltas, std::make_pair(int64_t{32}, int64_t{32}));
  EXPECT_TRUE(at::allclose(out, expected, 0.0, kMmdetExpectationAbs)) << out;
  // N = 0 gives the (empty) deltas back.
  EXPECT_EQ(coder.Decode(at::zeros({0, 4}), at::zeros({0, 4})).sizes(), (at::IntArrayRef{0, 4}));
}

DeltaXYWHBBoxCoderOptions BoxHeadOptions() {
  DeltaXYWHBBoxCoderOptions options;
  options.target_means = {0.01, -0.02, 0.03, 0.0};
  options.target_stds = {0.1, 0.1, 0.2, 0.2};
  return options;
}

at::Tensor RandomBoxes(int64_t n) {
  const at::Tensor xy = at::rand({n, 2}, at::kDouble) * 100;
  const at::Tensor wh = at::rand({n, 2}, at::kDouble) * 50 + 1;
  return at::cat({xy, xy + wh}, 1);
}

TEST(DeltaXYWHBBoxCoderTest, RoundTrips) {
  at::manual_seed(21);
  const DeltaXYWHBBoxCoder coder(BoxHeadOptions());
  const at::Tensor proposals = RandomBoxes(50);
  const at::Tensor gt = RandomBoxes(50);
  // decode(encode(b)) == b (no clipping; |log size ratios| stay within the wh clip here).
  EXPECT_TENSOR_NEAR_REL(coder.Decode(proposals, coder.Encode(proposals, gt)), gt,
                         kFloat64ParityRel);
  // encode(decode(d)) == d for deltas inside the wh clip.
  const at::Tensor deltas = at::randn({50, 4}, at::kDouble);
  EXPECT_TENSOR_NEAR_REL(coder.Encode(proposals, coder.Decode(proposals, deltas)), deltas,
                         kFloat64ParityRel);
  // Class-specific deltas [N, 4 * J]: each group decodes against the same RoI.
  const at::Tensor multi = at::randn({50, 12}, at::kDouble);
  const at::Tensor boxes = coder.Decode(proposals, multi);
  ASSERT_EQ(boxes.sizes(), (at::IntArrayRef{50, 12}));
  for (int64_t j = 0; j < 3; ++j) {
    EXPECT_TENSOR_NEAR_REL(boxes.slice(1, 4 * j, 4 * j + 4),
                           coder.Decode(proposals, multi.slice(1, 4 * j, 4 * j + 4).contiguous()),
                           kFloat64ParityRel);
  }
}

TEST(DeltaXYWHBBoxCoderTest, EncodeByHand) {
  const DeltaXYWHBBoxCoder coder;
  // Proposal centre (5, 5), size 10 x 10; gt centre (7, 4), size 20 x 5.
  const at::Tensor p = at::tensor({0.0, 0.0, 10.0, 10.0}, at::kDouble).view({1, 4});
  const at::Tensor g = at::tensor({-3.0, 1.5, 17.0, 6.5}, at::kDouble).view({1, 4});
  const at::Tensor expected =
      at::tensor({0.2, -0.1, std::log(2.0), std::log(0.5)}, at::kDouble).view({1, 4});
  EXPECT_TENSOR_NEAR_REL(coder.Encode(p, g), expected, kFloat64ParityRel);
}

TEST(DeltaXYWHBBoxCoderTest, ClampsLogSizeRatiosAtWhRatioClip) {
  const DeltaXYWHBBoxCoder coder;
  const at::Tensor roi = at::tensor({0.0, 0.0, 1.0, 1.0}, at::kDouble).view({1, 4});
  const at::Tensor deltas = at::tensor({0.0, 0.0, 10.0, -10.0}, at::kDouble).view({1, 4});
  const at::Tensor box = coder.Decode(roi, deltas);
  const double max_ratio = std::abs(std::log(16.0 / 1000.0));  // 4.135
  EXPECT_NEAR((box[0][2] - box[0][0]).item<double>(), std::exp(max_ratio), 1e-9);
  EXPECT_NEAR((box[0][3] - box[0][1]).item<double>(), std::exp(-max_ratio), 1e-12);
}

TEST(DeltaXYWHBBoxCoderTest, ClipsToTheImageEdges) {
  const DeltaXYWHBBoxCoder coder;
  const at::Tensor roi = at::tensor({-10.0, 5.0, 50.0, 70.0}, at::kDouble).view({1, 4});
  const at::Tensor zero = at::zeros({1, 4}, at::kDouble);
  const at::Tensor clipped = coder.Decode(roi, zero, std::make_pair(int64_t{60}, int64_t{40}));
  EXPECT_TENSOR_NEAR_REL(clipped, at::tensor({0.0, 5.0, 40.0, 60.0}, at::kDouble).view({1, 4}),
                         kFloat64ParityRel);
  EXPECT_TENSOR_NEAR_REL(coder.Decode(roi, zero), roi, kFloat64ParityRel);
}

TEST(DeltaXYWHBBoxCoderTest, DecodeIsDifferentiableInTheDeltas) {
  const DeltaXYWHBBoxCoder coder(BoxHeadOptions());
  const at::Tensor roi = at::tensor({0.0, 0.0, 10.0, 20.0}, at::kDouble).view({1, 4});
  const at::Tensor deltas = at::zeros({1, 4}, at::kDouble).requires_grad_(true);
  coder.Decode(roi, deltas).select(1, 2).sum().backward();  // x2 = cx + w / 2
  // d x2 / d dx = w * std_x = 1; d x2 / d dw = w/2 * exp(mean_w) * std_w at dw = 0.
  EXPECT_NEAR(deltas.grad()[0][0].item<double>(), 10.0 * 0.1, 1e-12);
  EXPECT_NEAR(deltas.grad()[0][2].item<double>(), 5.0 * std::exp(0.03) * 0.2, 1e-12);
}

TEST(DeltaXYWHBBoxCoderTest, RejectsBadArguments) {
  const DeltaXYWHBBoxCoder coder;
  const at::Tensor boxes = at::rand({3, 4});
  EXPECT_THROW(coder.Encode(boxes, boxes.narrow(0, 0, 2)), c10::Error);
  EXPECT_THROW(coder.Encode(boxes.narrow(1, 0, 3), boxes.narrow(1, 0, 3)), c10::Error);
  EXPECT_THROW(coder.Decode(boxes, at::rand({3, 5})), c10::Error);
  EXPECT_THROW(coder.Decode(boxes, at::rand({2, 4})), c10::Error);
  EXPECT_THROW(coder.Decode(boxes, at::rand({3, 4}), std::make_pair(int64_t{0}, int64_t{5})),
               c10::Error);
  DeltaXYWHBBoxCoderOptions options;
  options.target_stds = {1.0, 0.0, 1.0, 1.0};
  EXPECT_THROW(DeltaXYWHBBoxCoder{options}, c10::Error);
  options = {};
  options.wh_ratio_clip = 1.5;
  EXPECT_THROW(DeltaXYWHBBoxCoder{options}, c10::Error);
}

}  // namespace
}  // namespace psaq::detect
