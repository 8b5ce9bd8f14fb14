// The shared helpers of the model's building blocks: tap scopes, timm-like truncated-normal
// initialisation, the per-device/dtype constant cache.
#include "model/layer_util.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

namespace psaq::model {
namespace {

// Sample statistics of 10^6 draws: the standard error of a sample std is about std / 1400, so a
// 1% relative tolerance is > 10 standard errors wide and still catches a wrong distribution.
constexpr int64_t kDraws = 1'000'000;
constexpr double kSampleStdRel = 0.01;

TEST(TapScopeTest, RegistersDottedNamesUnderItsPrefix) {
  auto taps = std::make_shared<TapSet>();
  const TapScope root(taps, "");
  const TapScope attn = root.Child("blocks.2").Child("attn");
  EXPECT_EQ(root.Register("input", TapKind::kActivation), 0);
  EXPECT_EQ(attn.Register("qkv.weight", TapKind::kWeight), 1);
  EXPECT_EQ(attn.Name("av"), "blocks.2.attn.av");
  EXPECT_EQ(taps->Find("blocks.2.attn.qkv.weight"), 1);
  EXPECT_EQ(taps->taps()[1].kind, TapKind::kWeight);
}

TEST(TruncNormalTest, WideBoundsGiveTheNormalStd) {
  at::manual_seed(0);
  at::Tensor t = at::empty({kDraws});
  TruncNormal_(t, 0.02);  // timm's default bounds +-2
  EXPECT_NEAR(t.std().item<double>(), 0.02, 0.02 * kSampleStdRel);
  EXPECT_LE(t.abs().max().item<double>(), 2.0);
}

TEST(TruncNormalTest, TightBoundsGiveTheTruncatedStd) {
  at::manual_seed(0);
  at::Tensor t = at::empty({kDraws});
  TruncNormal_(t, 0.02, -0.02, 0.02);  // +-1 sigma
  // Std of N(0, s²) truncated to +-s: s * sqrt(1 - 2 phi(1) / (2 Phi(1) - 1)).
  const double phi1 = std::exp(-0.5) / std::sqrt(2.0 * M_PI);
  const double mass = std::erf(1.0 / std::sqrt(2.0));                 // 2 Phi(1) - 1
  const double expected = 0.02 * std::sqrt(1.0 - 2.0 * phi1 / mass);  // 0.010791
  EXPECT_NEAR(t.std().item<double>(), expected, expected * kSampleStdRel);
  EXPECT_LE(t.abs().max().item<double>(), 0.02);
}

TEST(ConstantCacheTest, CopiesOncePerDeviceAndDtype) {
  ConstantCache cache(at::arange(4, at::kFloat));
  const at::Tensor& a = cache.Get(at::kCPU, at::kDouble);
  EXPECT_EQ(a.scalar_type(), at::kDouble);
  const void* data = a.data_ptr();
  EXPECT_EQ(cache.Get(at::kCPU, at::kDouble).data_ptr(), data);
  EXPECT_EQ(cache.Get(at::kCPU, at::kFloat).scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(cache.Get(at::kCPU, at::kDouble), at::arange(4, at::kDouble)));
}

}  // namespace
}  // namespace psaq::model
