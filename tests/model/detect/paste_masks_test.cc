// Mask pasting against a direct per-pixel evaluation of mmdet's _do_paste_mask formula
// (bilinear, zero padding, align_corners=False), written out here in float32.
#include "model/detect/paste_masks.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "tests/testing/tensor_near.h"
#include "tests/testing/tolerances.h"

namespace psaq::detect {
namespace {

using psaq::testing::kFloat32KernelRel;
// Pixels whose probability is this close to the threshold may round either way between two
// float32 evaluations; the binary comparison skips them (and the test checks they are rare).
constexpr float kThresholdMargin = 1e-5f;

// grid_sample(bilinear, zeros, align_corners=False) of mask [Mh, Mw] at normalised (u, v).
float Bilinear(const at::TensorAccessor<float, 2>& mask, int64_t mh, int64_t mw, float u, float v) {
  const float ix = ((u + 1.f) * mw - 1.f) / 2.f;
  const float iy = ((v + 1.f) * mh - 1.f) / 2.f;
  const float x0 = std::floor(ix), y0 = std::floor(iy);
  float value = 0.f;
  for (int dy = 0; dy < 2; ++dy) {
    for (int dx = 0; dx < 2; ++dx) {
      const int64_t xi = static_cast<int64_t>(x0) + dx, yi = static_cast<int64_t>(y0) + dy;
      if (xi < 0 || yi < 0 || xi >= mw || yi >= mh) continue;
      const float wx = dx ? ix - x0 : 1.f - (ix - x0);
      const float wy = dy ? iy - y0 : 1.f - (iy - y0);
      value += wx * wy * mask[yi][xi];
    }
  }
  return value;
}

at::Tensor ReferenceProbs(const at::Tensor& masks, const at::Tensor& boxes, int64_t height,
                          int64_t width, bool skip_empty) {
  const int64_t n = masks.size(0), mh = masks.size(1), mw = masks.size(2);
  at::Tensor out = at::zeros({n, height, width});
  auto m = masks.accessor<float, 3>();
  auto b = boxes.accessor<float, 2>();
  auto o = out.accessor<float, 3>();
  for (int64_t i = 0; i < n; ++i) {
    int64_t xb = 0, yb = 0, xe = width, ye = height;
    if (skip_empty) {
      xb = std::max<int64_t>(static_cast<int64_t>(std::floor(b[i][0])) - 1, 0);
      yb = std::max<int64_t>(static_cast<int64_t>(std::floor(b[i][1])) - 1, 0);
      xe = std::min<int64_t>(static_cast<int64_t>(std::ceil(b[i][2])) + 1, width);
      ye = std::min<int64_t>(static_cast<int64_t>(std::ceil(b[i][3])) + 1, height);
    }
    for (int64_t y = yb; y < ye; ++y) {
      for (int64_t x = xb; x < xe; ++x) {
        const float u = (static_cast<float>(x) + 0.5f - b[i][0]) / (b[i][2] - b[i][0]) * 2 - 1;
        const float v = (static_cast<float>(y) + 0.5f - b[i][1]) / (b[i][3] - b[i][1]) * 2 - 1;
        o[i][y][x] = Bilinear(m[i], mh, mw, std::isinf(u) ? 0.f : u, std::isinf(v) ? 0.f : v);
      }
    }
  }
  return out;
}

void CheckAgainstReference(bool skip_empty) {
  at::manual_seed(41);
  const int64_t n = 6, m = 14, height = 37, width = 45;
  const at::Tensor masks = at::rand({n, m, m});
  // Boxes of 3..40 px, some crossing the image border; one zero-width.
  const at::Tensor xy = at::rand({n, 2}) * 50 - 5;
  at::Tensor boxes = at::cat({xy, xy + at::rand({n, 2}) * 37 + 3}, 1);
  boxes[0][2] = boxes[0][0];
  const at::Tensor probs = PasteMaskProbs(masks, boxes, height, width, skip_empty);
  const at::Tensor expected = ReferenceProbs(masks, boxes, height, width, skip_empty);
  EXPECT_TRUE(psaq::testing::TensorsNearRel(probs, expected, kFloat32KernelRel, "probs"));
  PasteMasksOptions options;
  options.skip_empty = skip_empty;
  const at::Tensor binary = PasteMasks(masks, boxes, height, width, options);
  ASSERT_EQ(binary.sizes(), (at::IntArrayRef{n, height, width}));
  ASSERT_EQ(binary.scalar_type(), at::kBool);
  const at::Tensor decided = (expected - 0.5f).abs() > kThresholdMargin;
  EXPECT_GT(decided.sum().item<int64_t>(), decided.numel() * 99 / 100);
  EXPECT_TRUE(binary.masked_select(decided).equal((expected >= 0.5f).masked_select(decided)));
  EXPECT_GT(binary.sum().item<int64_t>(), 0);
}

TEST(PasteMasksTest, MatchesPerPixelReferenceWithSkipEmpty) { CheckAgainstReference(true); }

TEST(PasteMasksTest, MatchesPerPixelReferenceOverTheWholeImage) { CheckAgainstReference(false); }

// A large box (4 px per mask cell) shows the CPU window: the whole-image path also sets pixels
// beyond the one-pixel margin (the bilinear footprint reaches half a cell past the box).
TEST(PasteMasksTest, SkipEmptyLimitsTheWindowToTheBoxPlusOnePixel) {
  const at::Tensor masks = at::ones({1, 4, 4});
  const at::Tensor boxes = at::tensor({8.f, 8.f, 24.f, 24.f}).view({1, 4});
  const at::Tensor windowed = PasteMaskProbs(masks, boxes, 40, 40, true);
  const at::Tensor whole = PasteMaskProbs(masks, boxes, 40, 40, false);
  EXPECT_EQ(windowed[0][16][6].item<float>(), 0.f);  // x = 6 < floor(8) - 1
  EXPECT_GT(whole[0][16][6].item<float>(), 0.f);     // within half a cell (2 px) of the box
  EXPECT_EQ(windowed[0][16][7].item<float>(), whole[0][16][7].item<float>());
  EXPECT_EQ(windowed[0][16][16].item<float>(), 1.f);
  // Pixel 6 samples 0.125 (below 0.5, and outside the window anyway); pixel 8 samples 0.625.
  const at::Tensor binary = PasteMasks(masks, boxes, 40, 40);
  EXPECT_FALSE(binary[0][16][6].item<bool>());
  EXPECT_TRUE(binary[0][16][8].item<bool>());
}

TEST(PasteMasksTest, EmptyAndOutsideBoxes) {
  EXPECT_EQ(PasteMasks(at::zeros({0, 7, 7}), at::zeros({0, 4}), 5, 6).sizes(),
            (at::IntArrayRef{0, 5, 6}));
  const at::Tensor outside = at::tensor({100.f, 100.f, 120.f, 120.f}).view({1, 4});
  EXPECT_FALSE(PasteMasks(at::ones({1, 7, 7}), outside, 30, 30).any().item<bool>());
}

TEST(PasteMasksTest, RejectsBadArguments) {
  EXPECT_THROW(PasteMasks(at::rand({2, 7}), at::rand({2, 4}), 8, 8), c10::Error);
  EXPECT_THROW(PasteMasks(at::rand({2, 7, 7}), at::rand({3, 4}), 8, 8), c10::Error);
  EXPECT_THROW(PasteMasks(at::rand({2, 7, 7}), at::rand({2, 4}), 0, 8), c10::Error);
  at::Tensor nan_box = at::rand({2, 4});
  nan_box[1][2] = std::nanf("");
  EXPECT_THROW(PasteMasks(at::rand({2, 7, 7}), nan_box, 8, 8), c10::Error);
}

}  // namespace
}  // namespace psaq::detect
