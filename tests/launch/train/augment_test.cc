// Random crop with padding and horizontal flip: per-sample determinism, shape, the exact pixels
// of a crop and a flip, and the distribution of the draws.
#include "launch/train/augment.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "tests/testing/tensor_near.h"

namespace psaq::train {
namespace {

std::vector<uint64_t> Seeds(int64_t n, uint64_t base) {
  std::vector<uint64_t> seeds;
  for (int64_t i = 0; i < n; ++i) seeds.push_back(base + static_cast<uint64_t>(i));
  return seeds;
}

// The first seed (from `base`) whose draw satisfies `want`.
template <typename Pred>
uint64_t FindSeed(const AugmentOptions& o, Pred want) {
  for (uint64_t s = 0; s < 100000; ++s) {
    if (want(DrawAugment(o, s))) return s;
  }
  ADD_FAILURE() << "no seed found";
  return 0;
}

TEST(AugmentTest, SameSeedsGiveTheSameBatchAndShapeIsKept) {
  at::manual_seed(0);
  const at::Tensor images = at::randn({6, 2, 8, 8});
  const at::Tensor fill = at::full({2}, -0.5);
  AugmentOptions o;
  for (PadMode mode : {PadMode::kConstant, PadMode::kReflect}) {
    o.pad_mode = mode;
    const at::Tensor a = AugmentBatch(images, o, fill, Seeds(6, 10));
    const at::Tensor b = AugmentBatch(images, o, fill, Seeds(6, 10));
    EXPECT_EQ(a.sizes(), images.sizes());
    EXPECT_TENSOR_IDENTICAL(a, b);
    EXPECT_FALSE(at::equal(a, AugmentBatch(images, o, fill, Seeds(6, 1000))));
    // Row k depends on seeds[k] only: augmenting a slice gives the same rows.
    const std::vector<uint64_t> all = Seeds(6, 10);
    const std::vector<uint64_t> tail(all.begin() + 2, all.end());
    EXPECT_TENSOR_IDENTICAL(AugmentBatch(images.narrow(0, 2, 4), o, fill, tail), a.narrow(0, 2, 4));
  }
}

TEST(AugmentTest, DisabledAugmentationIsTheIdentity) {
  const at::Tensor images = at::randn({3, 1, 5, 5});
  AugmentOptions o;
  o.pad = 0;
  o.flip_prob = 0;
  EXPECT_TENSOR_IDENTICAL(AugmentBatch(images, o, at::Tensor(), Seeds(3, 0)), images);
}

TEST(AugmentTest, CropShiftsTheImageAndFillsTheBorder) {
  const at::Tensor image = at::arange(16, at::kFloat).view({1, 1, 4, 4}) + 1;  // values 1..16
  AugmentOptions o;
  o.pad = 1;
  o.flip_prob = 0;
  const at::Tensor fill = at::full({1}, -7.0);
  // top = 0, left = 2: the window starts one row above and one column right of the image.
  const uint64_t seed = FindSeed(o, [](const AugmentDraw& d) { return d.top == 0 && d.left == 2; });
  const at::Tensor out = AugmentBatch(image, o, fill, {seed})[0][0];  // [4, 4]
  const at::Tensor expected = at::tensor({-7.f, -7.f, -7.f, -7.f,     //
                                          2.f, 3.f, 4.f, -7.f,        //
                                          6.f, 7.f, 8.f, -7.f,        //
                                          10.f, 11.f, 12.f, -7.f})
                                  .view({4, 4});
  EXPECT_TENSOR_IDENTICAL(out, expected);

  // Reflect: padded row -1 is row 1, column 4 is column 2.
  o.pad_mode = PadMode::kReflect;
  const at::Tensor reflected = AugmentBatch(image, o, at::Tensor(), {seed})[0][0];
  const at::Tensor expected_reflect = at::tensor({6.f, 7.f, 8.f, 7.f,  //
                                                  2.f, 3.f, 4.f, 3.f,  //
                                                  6.f, 7.f, 8.f, 7.f,  //
                                                  10.f, 11.f, 12.f, 11.f})
                                          .view({4, 4});
  EXPECT_TENSOR_IDENTICAL(reflected, expected_reflect);
}

TEST(AugmentTest, FlipMirrorsColumnsAfterTheCentredCrop) {
  const at::Tensor image = at::arange(12, at::kFloat).view({1, 1, 3, 4});
  AugmentOptions o;
  o.pad = 2;
  const uint64_t seed =
      FindSeed(o, [](const AugmentDraw& d) { return d.top == 2 && d.left == 2 && d.flip; });
  EXPECT_TENSOR_IDENTICAL(AugmentBatch(image, o, at::zeros({1}), {seed}), image.flip({3}));
}

TEST(AugmentTest, DrawsAreUniformOverOffsetsAndFlipAtTheRequestedRate) {
  AugmentOptions o;
  o.pad = 2;
  o.flip_prob = 0.25;
  constexpr int kDraws = 20000;
  std::vector<int> tops(5, 0), lefts(5, 0);
  int flips = 0;
  for (uint64_t s = 0; s < kDraws; ++s) {
    const AugmentDraw d = DrawAugment(o, s);
    ASSERT_GE(d.top, 0);
    ASSERT_LE(d.top, 4);
    ASSERT_GE(d.left, 0);
    ASSERT_LE(d.left, 4);
    ++tops[d.top];
    ++lefts[d.left];
    flips += d.flip;
  }
  // Binomial counts: expected 4000 per offset (sd 57) and 5000 flips (sd 61); 5 sd bounds.
  for (int v = 0; v < 5; ++v) {
    EXPECT_NEAR(tops[v], kDraws / 5, 290) << "top " << v;
    EXPECT_NEAR(lefts[v], kDraws / 5, 290) << "left " << v;
  }
  EXPECT_NEAR(flips, kDraws / 4, 310);
}

TEST(AugmentTest, BadArgumentsThrow) {
  const at::Tensor images = at::zeros({2, 1, 4, 4});
  AugmentOptions o;
  EXPECT_THROW(AugmentBatch(images, o, at::zeros({1}), Seeds(1, 0)), c10::Error);     // seed count
  EXPECT_THROW(AugmentBatch(images, o, at::zeros({3}), Seeds(2, 0)), c10::Error);     // fill size
  EXPECT_THROW(AugmentBatch(images[0], o, at::zeros({1}), Seeds(1, 0)), c10::Error);  // rank
  o.pad = -1;
  EXPECT_THROW(AugmentBatch(images, o, at::zeros({1}), Seeds(2, 0)), std::invalid_argument);
  o.pad = 4;
  o.pad_mode = PadMode::kReflect;  // reflect needs pad < side
  EXPECT_THROW(AugmentBatch(images, o, at::Tensor(), Seeds(2, 0)), c10::Error);
  o = AugmentOptions();
  o.flip_prob = 1.5;
  EXPECT_THROW(ValidateAugment(o), std::invalid_argument);
  EXPECT_EQ(ParsePadMode(PadModeName(PadMode::kReflect)), PadMode::kReflect);
  EXPECT_THROW(ParsePadMode("edge"), std::invalid_argument);
}

}  // namespace
}  // namespace psaq::train
