// RoIAlign: the pure-ATen fallback against torchvision's operator (values and input gradients)
// over aligned/legacy, fixed/adaptive sampling, several scales and boxes partly outside the map;
// plus hand-computed values of the fallback alone. torchvision's library is required (CI
// installs python3-torchvision): without it the comparisons fail.
#include "model/detect/roi_align.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "tests/testing/tensor_near.h"
#include "tests/testing/tolerances.h"

namespace psaq::detect {
namespace {

using psaq::testing::kFloat32KernelRel;
// float64 fallback vs torchvision's float64 kernel: same math, different summation order.
constexpr double kFloat64KernelRel = 1e-10;

// [K, 5] RoIs on `num_images` images of height x width pixels at `scale`: corners spread from
// 30% beyond the top-left to 30% beyond the bottom-right, some tiny, one inverted.
at::Tensor RandomRois(int64_t k, int64_t num_images, int64_t height, int64_t width, double scale,
                      at::ScalarType dtype) {
  const double img_h = height / scale, img_w = width / scale;
  const at::Tensor b = at::randint(num_images, {k}, at::kDouble);
  const at::Tensor x1 = at::rand({k}, at::kDouble) * 1.6 * img_w - 0.3 * img_w;
  const at::Tensor y1 = at::rand({k}, at::kDouble) * 1.6 * img_h - 0.3 * img_h;
  at::Tensor w = at::rand({k}, at::kDouble) * 0.8 * img_w;
  at::Tensor h = at::rand({k}, at::kDouble) * 0.8 * img_h;
  w[0] = 0.3;  // smaller than a feature cell
  h[0] = 0.2;
  w[1] = -2.0;  // inverted
  at::Tensor rois = at::stack({b, x1, y1, x1 + w, y1 + h}, 1);
  rois[2] = at::tensor({0.0, -img_w, -img_h, 2 * img_w, 2 * img_h}, at::kDouble);  // covers all
  return rois.to(dtype);
}

struct Case {
  bool aligned;
  int64_t sampling_ratio;
  double scale;
};

std::string Name(const Case& c, at::ScalarType dtype) {
  return std::string(dtype == at::kFloat ? "f32" : "f64") + " aligned=" + (c.aligned ? "1" : "0") +
         " sampling_ratio=" + std::to_string(c.sampling_ratio) +
         " scale=" + std::to_string(c.scale);
}

void CompareBackends(at::ScalarType dtype, double tol) {
  ASSERT_TRUE(TorchvisionOpsAvailable())
      << "torchvision operators needed (install python3-torchvision): "
      << LoadTorchvisionOps().reason;
  at::manual_seed(7);
  const Case cases[] = {{true, 2, 1.0},      {true, 0, 1.0}, {false, 2, 1.0},   {false, 0, 1.0},
                        {true, 2, 0.25},     {true, 0, 0.5}, {false, 2, 0.125}, {false, 0, 0.25},
                        {true, 1, 1.0 / 32}, {false, 3, 0.5}};
  for (const Case& c : cases) {
    SCOPED_TRACE(Name(c, dtype));
    const int64_t n = 2, channels = 3, height = 13, width = 11, ph = 7, pw = 5;
    const at::Tensor input = at::randn({n, channels, height, width}, dtype);
    const at::Tensor rois = RandomRois(24, n, height, width, c.scale, dtype);
    const at::Tensor grad_out = at::randn({24, channels, ph, pw}, dtype);

    const at::Tensor x_tv = input.clone().requires_grad_(true);
    const at::Tensor y_tv = RoiAlign(x_tv, rois, c.scale, ph, pw, c.sampling_ratio, c.aligned,
                                     OpsBackend::kTorchvision);
    (y_tv * grad_out).sum().backward();
    const at::Tensor x_at = input.clone().requires_grad_(true);
    const at::Tensor y_at =
        RoiAlign(x_at, rois, c.scale, ph, pw, c.sampling_ratio, c.aligned, OpsBackend::kAten);
    (y_at * grad_out).sum().backward();

    ASSERT_EQ(y_at.sizes(), y_tv.sizes());
    EXPECT_GT(y_tv.abs().max().item<double>(), 0.0);
    EXPECT_TRUE(psaq::testing::TensorsNearRel(y_at, y_tv, tol, "output"));
    EXPECT_TRUE(psaq::testing::TensorsNearRel(x_at.grad(), x_tv.grad(), tol, "input grad"));
    const psaq::testing::TensorDiff diff = psaq::testing::CompareTensors(y_at, y_tv);
    const psaq::testing::TensorDiff gdiff = psaq::testing::CompareTensors(x_at.grad(), x_tv.grad());
    std::printf("[ roi_align ] %s: output %s; grad %s\n", Name(c, dtype).c_str(),
                diff.Describe().c_str(), gdiff.Describe().c_str());
  }
}

TEST(RoiAlignTest, AtenMatchesTorchvisionFloat32) {
  CompareBackends(at::kFloat, kFloat32KernelRel);
}

TEST(RoiAlignTest, AtenMatchesTorchvisionFloat64) {
  CompareBackends(at::kDouble, kFloat64KernelRel);
}

TEST(RoiAlignTest, AutoUsesTorchvisionWhenLoaded) {
  ASSERT_TRUE(TorchvisionOpsAvailable()) << LoadTorchvisionOps().reason;
  at::manual_seed(3);
  const at::Tensor input = at::randn({1, 2, 9, 9});
  const at::Tensor rois = RandomRois(6, 1, 9, 9, 1.0, at::kFloat);
  EXPECT_TENSOR_IDENTICAL(RoiAlign(input, rois, 1.0, 3, 3, 2, true),
                          RoiAlign(input, rois, 1.0, 3, 3, 2, true, OpsBackend::kTorchvision));
}

// f(y, x) = x on the feature grid: bilinear sampling inside the map returns the sample's x, so
// with aligned=True a bin's value is its centre's x in feature coordinates (samples symmetric).
TEST(RoiAlignTest, AtenAveragesALinearRampAtBinCentres) {
  const int64_t width = 16;
  const at::Tensor ramp =
      at::arange(width, at::kDouble).view({1, 1, 1, width}).expand({1, 1, 12, width}).contiguous();
  // Image box (4, 2) .. (20, 14) at scale 0.5 -> feature (2, 1) .. (10, 7), minus 0.5 aligned.
  const at::Tensor rois = at::tensor({0.0, 4.0, 2.0, 20.0, 14.0}, at::kDouble).view({1, 5});
  const at::Tensor out = RoiAlignAten(ramp, rois, 0.5, 3, 4, 2, true);
  ASSERT_EQ(out.sizes(), (at::IntArrayRef{1, 1, 3, 4}));
  for (int64_t pw = 0; pw < 4; ++pw) {
    const double centre = (2.0 - 0.5) + (pw + 0.5) * 2.0;  // bin width 8 / 4
    for (int64_t ph = 0; ph < 3; ++ph) {
      EXPECT_NEAR(out[0][0][ph][pw].item<double>(), centre, 1e-12) << ph << "," << pw;
    }
  }
}

// Samples beyond y > H (or x > W) contribute 0 but still count in the mean; samples in
// [-1, 0) are clamped onto row/column 0.
TEST(RoiAlignTest, AtenZeroesSamplesBeyondTheMapAndClampsNearTheBorder) {
  const at::Tensor ones = at::ones({1, 1, 4, 4}, at::kDouble);
  // One bin, 2 x 2 samples at y, x in {-0.75, -0.25} (clamped: value 1) with aligned=False.
  const at::Tensor near = at::tensor({0.0, -1.0, -1.0, 0.0, 0.0}, at::kDouble).view({1, 5});
  EXPECT_DOUBLE_EQ(RoiAlignAten(ones, near, 1.0, 1, 1, 2, false).item<double>(), 1.0);
  // Box x in [3, 7]: samples at x = 4 and 6 -> 4 <= W is clamped to the last column (1), 6 > W
  // contributes 0; y in [0, 2] inside: mean (1 + 0 + 1 + 0) / 4.
  const at::Tensor far = at::tensor({0.0, 3.0, 0.0, 7.0, 2.0}, at::kDouble).view({1, 5});
  EXPECT_DOUBLE_EQ(RoiAlignAten(ones, far, 1.0, 1, 1, 2, false).item<double>(), 0.5);
}

// Chunks of a few RoIs, single RoIs, and single RoIs split by channel give the same result
// (values and input gradients), also with adaptive grids of different sizes in one chunk.
TEST(RoiAlignTest, AtenResultDoesNotDependOnChunking) {
  at::manual_seed(5);
  const at::Tensor input = at::randn({2, 5, 13, 11}, at::kDouble);
  const at::Tensor rois = RandomRois(12, 2, 13, 11, 0.5, at::kDouble);
  const at::Tensor grad_out = at::randn({12, 5, 4, 3}, at::kDouble);
  auto run = [&](int64_t sampling_ratio, int64_t budget, at::Tensor* grad) {
    const at::Tensor x = input.clone().requires_grad_(true);
    const at::Tensor y = RoiAlignAten(x, rois, 0.5, 4, 3, sampling_ratio, true, budget);
    (y * grad_out).sum().backward();
    *grad = x.grad();
    return y.detach();
  };
  for (int64_t sampling_ratio : {0, 2}) {
    at::Tensor grad_ref;
    const at::Tensor ref = run(sampling_ratio, kRoiAlignChunkElements, &grad_ref);
    for (int64_t budget : {int64_t{1}, int64_t{100}, int64_t{2000}}) {
      SCOPED_TRACE(budget);
      at::Tensor grad;
      EXPECT_TENSOR_NEAR_REL(run(sampling_ratio, budget, &grad), ref, kFloat64KernelRel);
      EXPECT_TENSOR_NEAR_REL(grad, grad_ref, kFloat64KernelRel);
    }
  }
}

TEST(RoiAlignTest, RejectsBadArguments) {
  const at::Tensor input = at::randn({2, 3, 8, 8});
  const at::Tensor rois = at::tensor({0.f, 1.f, 1.f, 5.f, 5.f}).view({1, 5});
  for (OpsBackend backend : {OpsBackend::kAten, OpsBackend::kAuto}) {
    EXPECT_THROW(RoiAlign(input, rois.narrow(1, 0, 4), 1.0, 2, 2, 2, true, backend), c10::Error);
    EXPECT_THROW(RoiAlign(input[0], rois, 1.0, 2, 2, 2, true, backend), c10::Error);
    EXPECT_THROW(RoiAlign(input, rois, 1.0, 0, 2, 2, true, backend), c10::Error);
    const at::Tensor bad_batch = at::tensor({2.f, 1.f, 1.f, 5.f, 5.f}).view({1, 5});
    EXPECT_THROW(RoiAlign(input, bad_batch, 1.0, 2, 2, 2, true, backend), c10::Error);
    const at::Tensor negative_batch = at::tensor({-1.f, 1.f, 1.f, 5.f, 5.f}).view({1, 5});
    EXPECT_THROW(RoiAlign(input, negative_batch, 1.0, 2, 2, 2, true, backend), c10::Error);
    const at::Tensor nan_box = at::tensor({0.f, 1.f, std::nanf(""), 5.f, 5.f}).view({1, 5});
    EXPECT_THROW(RoiAlign(input, nan_box, 1.0, 2, 2, 0, true, backend), c10::Error);
    const at::Tensor inf_box = at::tensor({0.f, 1.f, 1.f, INFINITY, 5.f}).view({1, 5});
    EXPECT_THROW(RoiAlign(input, inf_box, 1.0, 2, 2, 0, true, backend), c10::Error);
  }
  EXPECT_THROW(RoiAlignAten(input, rois.to(at::kDouble), 1.0, 2, 2, 2, true), c10::Error);
  EXPECT_THROW(RoiAlignAten(input.to(at::kInt), rois, 1.0, 2, 2, 2, true), c10::Error);
}

TEST(RoiAlignTest, EmptyRoisGiveAnEmptyOutput) {
  const at::Tensor input = at::randn({1, 3, 8, 8});
  const at::Tensor none = at::zeros({0, 5});
  EXPECT_EQ(RoiAlignAten(input, none, 1.0, 7, 7, 2, true).sizes(), (at::IntArrayRef{0, 3, 7, 7}));
}

}  // namespace
}  // namespace psaq::detect
