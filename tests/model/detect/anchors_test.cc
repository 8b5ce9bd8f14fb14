// AnchorGenerator against values derived by hand from mmdet 2.x's formula (header) and against
// mmdet's own tests/test_utils/test_anchor.py::test_strides expectations.
#include "model/detect/anchors.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "tests/testing/tensor_near.h"

namespace psaq::detect {
namespace {

// float32 products of sqrt(2): the anchors are float32 in mmdet too.
constexpr double kAnchorAbs = 1e-4;

TEST(AnchorGeneratorTest, MaskRcnnBaseAnchorsFromTheFormula) {
  const AnchorGenerator generator;  // mask_rcnn_swin_fpn's defaults
  EXPECT_EQ(generator.num_levels(), 5);
  EXPECT_EQ(generator.num_base_anchors(), 3);
  const double r = std::sqrt(2.0);
  // Stride 4, scale 8: ratio 0.5 -> w = 32 sqrt(2), h = 16 sqrt(2); ratio 1 -> 32 x 32;
  // ratio 2 -> w = 16 sqrt(2), h = 32 sqrt(2). Centred on (0, 0).
  const at::Tensor expected0 = at::tensor({-16 * r, -8 * r, 16 * r, 8 * r,  //
                                           -16.0, -16.0, 16.0, 16.0,        //
                                           -8 * r, -16 * r, 8 * r, 16 * r},
                                          at::kDouble)
                                   .view({3, 4});
  const at::Tensor base0 = generator.base_anchors(0);
  EXPECT_EQ(base0.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::allclose(base0.to(at::kDouble), expected0, 0.0, kAnchorAbs)) << base0;
  // Stride 64 (P6): 8 * 64 = 512.
  const at::Tensor base4 = generator.base_anchors(4);
  EXPECT_TRUE(at::allclose(base4[1].to(at::kDouble),
                           at::tensor({-256.0, -256.0, 256.0, 256.0}, at::kDouble), 0.0,
                           kAnchorAbs));
  EXPECT_NEAR(base4[0][0].item<double>(), -256 * r, kAnchorAbs * 8);
  EXPECT_THROW(generator.base_anchors(5), c10::Error);
}

TEST(AnchorGeneratorTest, GridOrderIsRowsThenColumnsThenBaseAnchors) {
  const AnchorGenerator generator;
  const at::Tensor anchors = generator.GridAnchors(0, 2, 3);  // stride 4, Hf = 2, Wf = 3
  ASSERT_EQ(anchors.sizes(), (at::IntArrayRef{2 * 3 * 3, 4}));
  const at::Tensor base = generator.base_anchors(0);
  for (int64_t y = 0; y < 2; ++y) {
    for (int64_t x = 0; x < 3; ++x) {
      for (int64_t a = 0; a < 3; ++a) {
        const at::Tensor shift = at::tensor({4.f * x, 4.f * y, 4.f * x, 4.f * y});
        EXPECT_TENSOR_IDENTICAL(anchors[(y * 3 + x) * 3 + a], base[a] + shift);
      }
    }
  }
  // (y = 1, x = 2, ratio 1): the 32 x 32 box centred on (8, 4).
  EXPECT_TENSOR_IDENTICAL(anchors[(1 * 3 + 2) * 3 + 1], at::tensor({-8.f, -12.f, 24.f, 20.f}));
}

// mmdet's test_strides: AnchorGenerator([10], [1.], [1.], [10]).grid_anchors([(2, 2)]).
TEST(AnchorGeneratorTest, MatchesMmdetsTestStrides) {
  AnchorGeneratorOptions options;
  options.strides = {10};
  options.ratios = {1.0};
  options.scales = {1.0};
  options.base_sizes = {10.0};
  const AnchorGenerator generator(options);
  const at::Tensor expected = at::tensor({-5.f, -5.f, 5.f, 5.f, 5.f, -5.f, 15.f, 5.f,  //
                                          -5.f, 5.f, 5.f, 15.f, 5.f, 5.f, 15.f, 15.f})
                                  .view({4, 4});
  EXPECT_TENSOR_IDENTICAL(generator.GridAnchors(0, 2, 2), expected);
}

TEST(AnchorGeneratorTest, AllLevelsAndCenterOffset) {
  AnchorGeneratorOptions options;
  options.center_offset = 0.5;
  const AnchorGenerator generator(options);
  const auto anchors = generator.GridAnchors({{8, 8}, {4, 4}, {2, 2}, {1, 1}, {1, 1}});
  ASSERT_EQ(anchors.size(), 5u);
  EXPECT_EQ(anchors[0].size(0), 8 * 8 * 3);
  EXPECT_EQ(anchors[4].size(0), 3);
  // centre_offset 0.5: the square anchor of cell (0, 0) at stride 8 is centred on (4, 4).
  EXPECT_TENSOR_IDENTICAL(anchors[1][1], at::tensor({-28.f, -28.f, 36.f, 36.f}));
  EXPECT_THROW(generator.GridAnchors({{8, 8}}), c10::Error);
}

TEST(AnchorGeneratorTest, RejectsBadOptions) {
  AnchorGeneratorOptions options;
  options.strides = {};
  EXPECT_THROW(AnchorGenerator{options}, c10::Error);
  options = {};
  options.ratios = {1.0, -2.0};
  EXPECT_THROW(AnchorGenerator{options}, c10::Error);
  options = {};
  options.scales = {0.0};
  EXPECT_THROW(AnchorGenerator{options}, c10::Error);
  options = {};
  options.base_sizes = {4.0, 8.0};  // 5 strides
  EXPECT_THROW(AnchorGenerator{options}, c10::Error);
  options = {};
  options.strides = {4, 0};
  EXPECT_THROW(AnchorGenerator{options}, c10::Error);
}

}  // namespace
}  // namespace psaq::detect
