#include "model/data/preprocess.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "tests/testing/tensor_near.h"
#include "tests/testing/tolerances.h"

namespace psaq::model {
namespace {

using ::psaq::testing::kFloat32KernelRel;

ModelConfig MakeConfig(int img_size, int chans, double crop_pct, const std::string& interp,
                       std::vector<double> mean, std::vector<double> std) {
  ModelConfig c;
  c.arch = Arch::kViT;
  c.vit.img_size = img_size;
  c.vit.in_chans = chans;
  c.preprocess.crop_pct = crop_pct;
  c.preprocess.interpolation = interp;
  c.preprocess.mean = std::move(mean);
  c.preprocess.std = std::move(std);
  return c;
}

ModelConfig FashionConfig() { return MakeConfig(28, 1, 1.0, "bicubic", {0.2860}, {0.3530}); }

// Raw pixel scale: mean 0, std 1, so the output is pixel / 255.
ModelConfig RawConfig(int img_size, int chans, double crop_pct, const std::string& interp) {
  return MakeConfig(img_size, chans, crop_pct, interp, std::vector<double>(chans, 0.0),
                    std::vector<double>(chans, 1.0));
}

at::Tensor RandomImage(int64_t h, int64_t w, int64_t c, uint64_t seed) {
  at::manual_seed(seed);
  return at::randint(0, 256, {h, w, c}, at::kLong).to(at::kByte);
}

// PIL's resampling filters (Pillow libImaging/Resample.c), evaluated in double.
double PilFilter(double x, bool bicubic) {
  x = std::abs(x);
  if (!bicubic) return x < 1.0 ? 1.0 - x : 0.0;
  const double a = -0.5;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// [out, in] resampling matrix: PIL's coefficients (support scaled by the shrink factor, taps
// normalised to sum 1).
std::vector<std::vector<double>> PilWeights(int in, int out, bool bicubic) {
  const double scale = static_cast<double>(in) / out;
  const double filter_scale = std::max(scale, 1.0);
  const double support = (bicubic ? 2.0 : 1.0) * filter_scale;
  std::vector<std::vector<double>> w(out, std::vector<double>(in, 0.0));
  for (int i = 0; i < out; ++i) {
    const double center = (i + 0.5) * scale;
    const int lo = std::max(static_cast<int>(center - support + 0.5), 0);
    const int hi = std::min(static_cast<int>(center + support + 0.5), in);
    double sum = 0;
    for (int j = lo; j < hi; ++j)
      sum += w[i][j] = PilFilter((j - center + 0.5) / filter_scale, bicubic);
    for (int j = lo; j < hi; ++j) w[i][j] /= sum;
  }
  return w;
}

// 1-channel uint8 [H, W, 1] resized to out_h x out_w by PIL's separable filter, rounded half-up
// and clamped once: double [out_h, out_w] of integer values.
at::Tensor PilResizeReference(const at::Tensor& img, int out_h, int out_w, bool bicubic) {
  const auto h = static_cast<int>(img.size(0)), w = static_cast<int>(img.size(1));
  const auto wy = PilWeights(h, out_h, bicubic), wx = PilWeights(w, out_w, bicubic);
  at::Tensor src = img.to(at::kDouble);
  auto s = src.accessor<double, 3>();
  at::Tensor out = at::zeros({out_h, out_w}, at::kDouble);
  auto o = out.accessor<double, 2>();
  for (int y = 0; y < out_h; ++y) {
    for (int x = 0; x < out_w; ++x) {
      double acc = 0;
      for (int k = 0; k < h; ++k) {
        for (int j = 0; j < w; ++j) acc += wy[y][k] * wx[x][j] * s[k][j][0];
      }
      o[y][x] = std::floor(std::clamp(acc, 0.0, 255.0) + 0.5);
    }
  }
  return out;
}

TEST(PreprocessTest, NormalisationMatchesHandComputedValues) {
  // 2x2 RGB image, identity geometry: out[c, y, x] = (v / 255 - mean[c]) / std[c].
  const std::vector<uint8_t> px = {0, 128, 255, 10, 20, 30, 200, 100, 50, 1, 2, 3};
  at::Tensor img =
      at::tensor(std::vector<int64_t>(px.begin(), px.end())).to(at::kByte).view({2, 2, 3});
  const std::vector<double> mean = {0.485, 0.456, 0.406}, std = {0.229, 0.224, 0.225};
  at::Tensor out = PreprocessImage(img, MakeConfig(2, 3, 1.0, "bicubic", mean, std));
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{3, 2, 2}));
  ASSERT_EQ(out.scalar_type(), at::kFloat);
  at::Tensor expected = at::empty({3, 2, 2}, at::kDouble);
  for (int y = 0; y < 2; ++y) {
    for (int x = 0; x < 2; ++x) {
      for (int c = 0; c < 3; ++c) {
        expected[c][y][x] = (px[(y * 2 + x) * 3 + c] / 255.0 - mean[c]) / std[c];
      }
    }
  }
  EXPECT_TENSOR_NEAR_REL(out, expected, kFloat32KernelRel);
  // Spot value: pixel (0, 0) has blue 255 -> (1 - 0.406) / 0.225 = 2.64.
  EXPECT_NEAR(out[2][0][0].item<double>(), 2.64, 1e-5);
}

TEST(PreprocessTest, FashionMnistGeometryIsIdentity) {
  at::Tensor img = RandomImage(28, 28, 1, 7);
  at::Tensor out = PreprocessImage(img, FashionConfig());
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{1, 28, 28}));
  at::Tensor expected = (img.permute({2, 0, 1}).to(at::kDouble) / 255.0 - 0.2860) / 0.3530;
  EXPECT_TENSOR_NEAR_REL(out, expected, kFloat32KernelRel);
}

TEST(PreprocessTest, ConstantImageStaysConstantAfterResizeAndCrop) {
  // 37x50 -> short side floor(16 / 0.875) = 18, long side int(18 * 50 / 37) = 24 -> crop 16.
  at::Tensor img = at::full({37, 50, 3}, 123, at::kByte);
  for (const char* interp : {"bicubic", "bilinear", "nearest"}) {
    ModelConfig config = MakeConfig(16, 3, 0.875, interp, {0.5, 0.4, 0.3}, {0.2, 0.25, 0.3});
    at::Tensor out = PreprocessImage(img, config);
    ASSERT_EQ(out.sizes(), (std::vector<int64_t>{3, 16, 16})) << interp;
    for (int c = 0; c < 3; ++c) {
      const double want = (123 / 255.0 - config.preprocess.mean[c]) / config.preprocess.std[c];
      EXPECT_TRUE(::psaq::testing::TensorsNearRel(out[c], at::full({16, 16}, want, at::kDouble),
                                                  kFloat32KernelRel, std::string(interp)));
    }
  }
}

TEST(PreprocessTest, BilinearHalvingOfGradientMatchesHandComputedPilWeights) {
  // v(y, x) = 10 x + 4 y on 8x8, halved to 4x4 (crop_pct 1, so the crop is the identity).
  // PIL bilinear at scale 2: support 2, interior taps (1, 3, 3, 1) / 8 -> 10 * (2x + 0.5) etc.;
  // border taps (3, 3, 1) / 7. Row part: 10 * {5/7, 2.5, 4.5, 44/7}; column part: 4 * the same.
  at::Tensor img = at::empty({8, 8, 1}, at::kByte);
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 8; ++x) img[y][x][0] = 10 * x + 4 * y;
  }
  at::Tensor out = PreprocessImage(img, RawConfig(4, 1, 1.0, "bilinear"));
  // round-half-up(hx[x] + hy[y]), hx = {7.143, 25, 45, 62.857}, hy = {2.857, 10, 18, 25.143}.
  const double expected[4][4] = {
      {10, 28, 48, 66}, {17, 35, 55, 73}, {25, 43, 63, 81}, {32, 50, 70, 88}};
  at::Tensor want = at::empty({1, 4, 4}, at::kDouble);
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 4; ++x) want[0][y][x] = expected[y][x] / 255.0;
  }
  EXPECT_TENSOR_NEAR_REL(out, want, kFloat32KernelRel);
}

TEST(PreprocessTest, ResamplingMatchesPilFormulaInBothDirections) {
  struct Case {
    int h, w, side;  // image size and img_size (crop_pct 1)
    const char* interp;
  };
  // 20x24 -> 10x12 (halving), 9x13 -> 4x5 (non-integer shrink), 5x6 -> 11x13 (upscaling).
  for (const Case& k :
       {Case{20, 24, 10, "bicubic"}, Case{9, 13, 4, "bicubic"}, Case{5, 6, 11, "bicubic"},
        Case{9, 13, 4, "bilinear"}, Case{5, 6, 11, "bilinear"}}) {
    at::Tensor img = RandomImage(k.h, k.w, 1, 11);
    at::Tensor out = PreprocessImage(img, RawConfig(k.side, 1, 1.0, k.interp));
    const int out_w = static_cast<int>(static_cast<double>(k.side) * k.w / k.h);
    at::Tensor ref = PilResizeReference(img, k.side, out_w, std::string(k.interp) == "bicubic");
    const auto left = static_cast<int64_t>(std::nearbyint((out_w - k.side) / 2.0));
    ref = ref.slice(1, left, left + k.side).unsqueeze(0) / 255.0;
    // Same coefficients, one rounding: equal up to float32 rounding of v / 255 (no .5 ties
    // occur for this seed).
    EXPECT_TRUE(::psaq::testing::TensorsNearRel(out, ref, kFloat32KernelRel,
                                                std::to_string(k.h) + "x" + std::to_string(k.w) +
                                                    " -> " + std::to_string(k.side) + " " +
                                                    k.interp));
  }
}

TEST(PreprocessTest, NearestSamplesPilsPixelCentres) {
  // v(y, x) = 10 x + y on 4x8 -> 2x4: PIL NEAREST reads source floor((dst + 0.5) * 2) = 1, 3, 5,
  // 7 (columns) and 1, 3 (rows); the crop of 2 columns starts at round(1.0) = 1: columns 3, 5.
  at::Tensor img = at::empty({4, 8, 1}, at::kByte);
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 8; ++x) img[y][x][0] = 10 * x + y;
  }
  at::Tensor out = PreprocessImage(img, RawConfig(2, 1, 1.0, "nearest"));
  at::Tensor want = at::tensor({31.0, 51.0, 33.0, 53.0}, at::kDouble).view({1, 2, 2}) / 255.0;
  EXPECT_TENSOR_NEAR_REL(out, want, kFloat32KernelRel);
}

TEST(PreprocessTest, CenterCropOffsetRoundsHalfToEvenAsTorchvision) {
  // Nearest, crop_pct 1, short side already img_size: no resize, only the crop.
  at::Tensor tall = at::arange(7 * 4, at::kLong).to(at::kByte).view({7, 4, 1});  // rows 0..6
  at::Tensor out = PreprocessImage(tall, RawConfig(4, 1, 1.0, "nearest"));
  // top = round(3 / 2) = round(1.5) = 2 (half to even).
  EXPECT_TENSOR_NEAR_REL(out[0], tall.slice(0, 2, 6).squeeze(2).to(at::kDouble) / 255.0,
                         kFloat32KernelRel);
  at::Tensor wide = at::arange(4 * 9, at::kLong).to(at::kByte).view({4, 9, 1});
  out = PreprocessImage(wide, RawConfig(4, 1, 1.0, "nearest"));
  // left = round(5 / 2) = round(2.5) = 2.
  EXPECT_TENSOR_NEAR_REL(out[0], wide.slice(1, 2, 6).squeeze(2).to(at::kDouble) / 255.0,
                         kFloat32KernelRel);
}

TEST(PreprocessTest, CropLargerThanResizedImagePadsWithZeros) {
  // crop_pct 2: the short side becomes floor(4 / 2) = 2, then the 2x2 image is padded to 4x4.
  at::Tensor img = at::full({4, 4, 1}, 200, at::kByte);
  at::Tensor out = PreprocessImage(img, RawConfig(4, 1, 2.0, "nearest"));
  at::Tensor want = at::zeros({1, 4, 4}, at::kDouble);
  want.slice(1, 1, 3).slice(2, 1, 3).fill_(200 / 255.0);
  EXPECT_TENSOR_NEAR_REL(out, want, kFloat32KernelRel);
}

TEST(PreprocessTest, ChannelConversionFollowsPil) {
  // 3 -> 1: PIL convert("L"), L = (19595 R + 38470 G + 7471 B + 2^15) >> 16.
  const std::vector<int64_t> rgb = {255, 0,   0,   0,  255, 0,  0, 0, 255,
                                    255, 255, 255, 10, 20,  30, 0, 0, 0};
  at::Tensor img = at::tensor(rgb).to(at::kByte).view({2, 3, 3});
  at::Tensor luma = PreprocessImage(img, RawConfig(2, 1, 1.0, "bicubic"));  // crop 2 of 2x3
  // left = round(0.5) = 0: columns 0, 1 of each row. Hand values: 76, 150 | 255, 18.
  at::Tensor want = at::tensor({76.0, 150.0, 255.0, 18.0}, at::kDouble).view({1, 2, 2}) / 255.0;
  EXPECT_TENSOR_NEAR_REL(luma, want, kFloat32KernelRel);
  at::Tensor blue = at::tensor(std::vector<int64_t>{0, 0, 255}).to(at::kByte).view({1, 1, 3});
  EXPECT_NEAR(PreprocessImage(blue, RawConfig(1, 1, 1.0, "bicubic")).item<double>() * 255.0, 29.0,
              1e-4);

  // 1 -> 3: the grey value in every channel, each normalised with its own mean/std.
  at::Tensor grey = RandomImage(5, 5, 1, 3);
  ModelConfig config = MakeConfig(5, 3, 1.0, "bicubic", {0.1, 0.2, 0.3}, {0.5, 0.6, 0.7});
  at::Tensor out = PreprocessImage(grey, config);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{3, 5, 5}));
  for (int c = 0; c < 3; ++c) {
    at::Tensor want_c = (grey.squeeze(2).to(at::kDouble) / 255.0 - config.preprocess.mean[c]) /
                        config.preprocess.std[c];
    EXPECT_TENSOR_NEAR_REL(out[c], want_c, kFloat32KernelRel);
  }
}

TEST(PreprocessTest, NormalisedPixelRangeBoundsEveryPreprocessedValueExactly) {
  const ModelConfig config = FashionConfig();
  auto [lo, hi] = NormalisedPixelRange(config);
  ASSERT_EQ(lo.sizes(), (std::vector<int64_t>{1}));
  EXPECT_NEAR(lo.item<double>(), -0.2860 / 0.3530, 1e-6);
  EXPECT_NEAR(hi.item<double>(), (1 - 0.2860) / 0.3530, 1e-6);
  at::Tensor img = RandomImage(28, 28, 1, 5);
  img[0][0][0] = 0;
  img[0][1][0] = 255;
  at::Tensor out = PreprocessImage(img, config);
  EXPECT_EQ(out.min().item<float>(), lo.item<float>());  // same float32 arithmetic: bit-equal
  EXPECT_EQ(out.max().item<float>(), hi.item<float>());

  auto [lo3, hi3] =
      NormalisedPixelRange(MakeConfig(8, 3, 0.9, "bicubic", {0.5, 0.5, 0.5}, {0.5, 0.25, 0.5}));
  EXPECT_TENSOR_NEAR_REL(lo3, at::tensor({-1.0, -2.0, -1.0}, at::kDouble), kFloat32KernelRel);
  EXPECT_TENSOR_NEAR_REL(hi3, at::tensor({1.0, 2.0, 1.0}, at::kDouble), kFloat32KernelRel);
}

TEST(PreprocessTest, BatchStacksImagesOfDifferentSizes) {
  const ModelConfig config = RawConfig(8, 1, 0.9, "bicubic");
  std::vector<at::Tensor> images = {RandomImage(28, 28, 1, 1), RandomImage(20, 31, 3, 2)};
  at::Tensor batch = PreprocessBatch(images, config);
  ASSERT_EQ(batch.sizes(), (std::vector<int64_t>{2, 1, 8, 8}));
  EXPECT_TENSOR_IDENTICAL(batch[1], PreprocessImage(images[1], config));
  EXPECT_EQ(PreprocessBatch({}, config).sizes(), (std::vector<int64_t>{0, 1, 8, 8}));
}

TEST(PreprocessTest, RejectsBadImagesAndConfigs) {
  const ModelConfig config = FashionConfig();
  EXPECT_THROW(PreprocessImage(at::zeros({28, 28, 1}, at::kFloat), config), c10::Error);
  EXPECT_THROW(PreprocessImage(at::zeros({28, 28}, at::kByte), config), c10::Error);
  EXPECT_THROW(PreprocessImage(at::zeros({28, 28, 4}, at::kByte), config), c10::Error);
  EXPECT_THROW(PreprocessImage(at::zeros({0, 28, 1}, at::kByte), config), c10::Error);
  ModelConfig bad = config;
  bad.preprocess.interpolation = "lanczos";
  EXPECT_THROW(PreprocessImage(at::zeros({28, 28, 1}, at::kByte), bad), c10::Error);
  bad = config;
  bad.preprocess.mean = {0.5, 0.5, 0.5};
  EXPECT_THROW(NormalisedPixelRange(bad), c10::Error);
  bad = config;
  bad.preprocess.std = {0.0};
  EXPECT_THROW(PreprocessImage(at::zeros({28, 28, 1}, at::kByte), bad), c10::Error);
  bad = config;
  bad.preprocess.crop_pct = 0;
  EXPECT_THROW(PreprocessImage(at::zeros({28, 28, 1}, at::kByte), bad), c10::Error);
}

}  // namespace
}  // namespace psaq::model
