// QuantizedModel on small ViT and Swin models: modes, calibration, accuracy bounds, gradients.
#include "quant/quantized_model.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "model/data/preprocess.h"
#include "quant/calibration.h"
#include "quant/metrics.h"
#include "tests/testing/tiny_models.h"
#include "tests/testing/tensor_near.h"

namespace psaq::quant {
namespace {

using testing::Batches;
using testing::TinyModel;

// Lower bounds on the logits' SQNR (dB) after calibrating on 4 x 8 random images and evaluating
// 8 others, for the seeded tiny models (the numbers move with the models' random init).
// Measured with LibTorch 1.13 CPU:
//                          ViT W8A8  W4A4   Swin W8A8  W4A4
//   this quantizer            37.0   14.2        21.3   7.1
//   over seeds 17..24      35-41  14-19       18-28   5-10
//   mutants of uniform.cc:
//     zero point sign flipped  0.9    0.8        -6.1  -5.9
//     weight scale a/(2^b-1)  10.1    8.8         6.4   5.5
//     trunc instead of round  36.1    7.0        16.3  -5.9
//     activation scale x2     35.9    8.5        20.9   3.2
// So the W8A8 bounds catch gross errors and the W4A4 bounds (where every error is larger) also
// catch the subtle ones; the exact formulas are pinned by uniform_test.cc.
struct SqnrBounds {
  double w8a8_db;
  double w4a4_db;
};
SqnrBounds BoundsFor(const std::string& arch) {
  return arch == "vit" ? SqnrBounds{30.0, 10.0} : SqnrBounds{16.0, 4.0};
}

class QuantizedModelTest : public ::testing::TestWithParam<std::string> {
 protected:
  model::ModelPtr Model() const { return TinyModel(GetParam()); }
  std::vector<at::Tensor> Calibration() const {
    return Batches(testing::TinyConfig(GetParam()), 4, 8, 101);
  }
  at::Tensor Eval() const { return Batches(testing::TinyConfig(GetParam()), 1, 8, 202)[0]; }
};

TEST_P(QuantizedModelTest, FloatModeIsTheFloatModelBitForBit) {
  model::ModelPtr m = Model();
  QuantizedModel q(m, QuantConfig{});
  const at::Tensor x = Eval();
  EXPECT_EQ(q.mode(), QuantizedModel::Mode::kFloat);
  EXPECT_TENSOR_IDENTICAL(q.Forward(x), m->forward(x));
  Calibrate(q, Calibration(), nullptr);
  q.SetMode(QuantizedModel::Mode::kFloat);
  EXPECT_TENSOR_IDENTICAL(q.Forward(x), m->forward(x));
}

TEST_P(QuantizedModelTest, QuantizingBeforeCalibrationThrows) {
  QuantizedModel q(Model(), QuantConfig{});
  EXPECT_THROW(q.SetMode(QuantizedModel::Mode::kQuantized), c10::Error);
  EXPECT_EQ(q.mode(), QuantizedModel::Mode::kFloat);
}

TEST_P(QuantizedModelTest, EveryTapHasAQuantizerAndEveryActivationARangeAfterCalibration) {
  model::ModelPtr m = Model();
  QuantizedModel q(m, QuantConfig{});
  size_t weights = 0, activations = 0;
  for (const model::TapInfo& info : m->taps().taps()) {
    weights += info.kind == model::TapKind::kWeight;
    activations += info.kind == model::TapKind::kActivation;
  }
  EXPECT_EQ(q.weight_taps().size(), weights);
  EXPECT_EQ(q.activation_taps().size(), activations);
  ASSERT_GT(weights, 0u);
  ASSERT_GT(activations, 0u);
  const std::vector<at::Tensor> batches = Calibration();
  const CalibrationResult result = Calibrate(q, batches, nullptr);
  EXPECT_EQ(result.local_samples, 32);
  EXPECT_EQ(result.global_samples, 32);
  EXPECT_EQ(q.mode(), QuantizedModel::Mode::kQuantized);
  for (int id : q.activation_taps()) {
    const ActivationQuantizer& a = q.activation_quantizer(id);
    ASSERT_TRUE(a.has_range()) << q.tap(id).name;
    EXPECT_LE(a.range().first, a.range().second) << q.tap(id).name;
    // PSAQ leaves the attention probabilities in float.
    EXPECT_EQ(a.bits(), IsSoftmaxTap(q.tap(id).name) ? kBitsOff : 8) << q.tap(id).name;
  }
  // The input tap's range is exactly the min and max over all calibration images.
  const at::Tensor all = at::cat(batches);
  const auto range = q.activation_quantizer(q.TapId("input")).range();
  EXPECT_EQ(range.first, all.min().item<double>());
  EXPECT_EQ(range.second, all.max().item<double>());
}

TEST_P(QuantizedModelTest, LogitSqnrIsHighAtW8A8AndLowerAtW4A4) {
  const at::Tensor x = Eval();
  double sqnr[2];
  int i = 0;
  for (int bits : {8, 4}) {
    model::ModelPtr m = Model();
    QuantizedModel q(m, testing::Bits(bits, bits));
    Calibrate(q, Calibration(), nullptr);
    const at::Tensor reference = m->forward(x);
    const at::Tensor quantized = q.Forward(x);
    EXPECT_FALSE(at::equal(quantized, reference));
    sqnr[i++] = Sqnr(reference, quantized);
    RecordProperty("logit_sqnr_w" + std::to_string(bits) + "a" + std::to_string(bits),
                   std::to_string(sqnr[i - 1]));
  }
  EXPECT_GT(sqnr[0], BoundsFor(GetParam()).w8a8_db) << GetParam() << " W8A8";
  EXPECT_GT(sqnr[1], BoundsFor(GetParam()).w4a4_db) << GetParam() << " W4A4";
  EXPECT_GT(sqnr[0], sqnr[1] + 10.0) << "4 fewer bits should cost well over 10 dB";
}

TEST_P(QuantizedModelTest, ThirtyTwoBitsEverywhereIsTheFloatModel) {
  model::ModelPtr m = Model();
  QuantizedModel q(m, testing::Bits(kBitsOff, kBitsOff));
  Calibrate(q, Calibration(), nullptr);
  const at::Tensor x = Eval();
  EXPECT_TENSOR_IDENTICAL(q.Forward(x), m->forward(x));
}

TEST_P(QuantizedModelTest, WeightOnlyQuantizationUsesTheQuantizedWeights) {
  // W4/A32: the output equals the float model run on fake-quantized copies of its weights.
  model::ModelPtr m = Model();
  QuantizedModel q(m, testing::Bits(4, kBitsOff));
  q.SetMode(QuantizedModel::Mode::kQuantized);  // no activation needs a range at 32 bits
  const at::Tensor x = Eval();
  const at::Tensor quantized = q.Forward(x);
  model::ModelPtr copy = TinyModel(GetParam());
  {
    at::NoGradGuard no_grad;
    for (int id : q.weight_taps()) {
      at::Tensor p = copy->named_parameters()[q.tap(id).name];
      p.copy_(q.weight_quantizer(id).FakeQuantize(p));
    }
  }
  EXPECT_TENSOR_IDENTICAL(quantized, copy->forward(x));
}

TEST_P(QuantizedModelTest, GradientsReachWeightsAndInputsThroughTheQuantizers) {
  model::ModelPtr m = Model();
  QuantizedModel q(m, testing::Bits(4, 8));
  Calibrate(q, Calibration(), nullptr);
  const at::Tensor x = Eval().requires_grad_(true);
  q.Forward(x).square().sum().backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_GT(x.grad().abs().sum().item<double>(), 0.0);
  for (int id : q.weight_taps()) {
    const at::Tensor g = m->named_parameters()[q.tap(id).name].grad();
    ASSERT_TRUE(g.defined()) << q.tap(id).name;
    EXPECT_GT(g.abs().sum().item<double>(), 0.0) << q.tap(id).name;
  }
}

TEST_P(QuantizedModelTest, BitOverridesApplyPerTap) {
  model::ModelPtr m = Model();
  const std::string head =
      m->taps()
          .taps()[static_cast<size_t>(m->taps().IdsOfKind(model::TapKind::kWeight).back())]
          .name;
  QuantConfig config = testing::Bits(4, 8);
  config.bits_overrides = {{head, 8}, {"input", 6}};
  QuantizedModel q(m, config);
  EXPECT_EQ(q.weight_quantizer(q.TapId(head)).bits(), 8);
  EXPECT_EQ(q.activation_quantizer(q.TapId("input")).bits(), 6);
  EXPECT_EQ(q.weight_quantizer(q.weight_taps().front()).bits(), 4);
  QuantConfig bad;
  bad.bits_overrides = {{"no.such.tap", 8}};
  EXPECT_THROW(QuantizedModel(Model(), bad), c10::Error);
  // The same check, callable before a job makes its samples: it names the override.
  EXPECT_NO_THROW(CheckBitsOverrides(m->taps(), config.bits_overrides, "tiny"));
  try {
    CheckBitsOverrides(m->taps(), bad.bits_overrides, "tiny");
    ADD_FAILURE() << "an override naming no tap was accepted";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bits override 'no.such.tap'"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("tap of tiny"), std::string::npos) << e.what();
  }
  QuantConfig bad_bits;
  bad_bits.act_bits = 1;
  EXPECT_THROW(QuantizedModel(Model(), bad_bits), c10::Error);
}

TEST_P(QuantizedModelTest, PixelBoxReplacesOnlyTheInputRangeAndSurvivesRecalibration) {
  std::vector<at::Tensor> dim = Calibration();
  for (at::Tensor& b : dim) b.mul_(0.1);  // far inside the pixel box, as dim synthetic samples
  QuantizedModel calibrated(Model(), QuantConfig{});
  QuantConfig config;
  config.input_range = InputRange::kPixelBox;
  QuantizedModel box(Model(), config);
  Calibrate(calibrated, dim, nullptr);
  Calibrate(box, dim, nullptr);
  auto [lo, hi] = model::NormalisedPixelRange(testing::TinyConfig(GetParam()));
  const std::pair<double, double> pixel_box{lo.min().item<double>(), hi.max().item<double>()};
  const int input = box.TapId(kInputTap);
  EXPECT_EQ(box.activation_quantizer(input).range(), pixel_box);
  const auto dim_range = calibrated.activation_quantizer(input).range();
  EXPECT_GT(dim_range.first, pixel_box.first);
  EXPECT_LT(dim_range.second, pixel_box.second);
  // Calibration observes the float model, so every other range is the calibrated one.
  for (int id : box.activation_taps()) {
    if (id == input) continue;
    EXPECT_EQ(box.activation_quantizer(id).range(), calibrated.activation_quantizer(id).range())
        << box.tap(id).name;
  }
  // V2 recalibrates every round: the box stays.
  Recalibrate(box, Calibration(), nullptr);
  EXPECT_EQ(box.activation_quantizer(input).range(), pixel_box);
}

TEST_P(QuantizedModelTest, RecalibrateFollowsTheCurrentWeightsAndKeepsTheMode) {
  model::ModelPtr m = Model();
  QuantizedModel q(m, QuantConfig{});
  const std::vector<at::Tensor> batches = Calibration();
  Calibrate(q, batches, nullptr);
  const int out = q.activation_taps().back();  // the logits
  const auto before = q.activation_quantizer(out).range();
  {
    at::NoGradGuard no_grad;
    for (auto& p : m->parameters()) p.mul_(1.5);
  }
  q.SetMode(QuantizedModel::Mode::kFloat);
  Recalibrate(q, batches, nullptr);
  EXPECT_EQ(q.mode(), QuantizedModel::Mode::kQuantized);
  EXPECT_NE(q.activation_quantizer(out).range(), before);
  // A model already quantized stays quantized, and equal data gives equal ranges.
  const auto after = q.activation_quantizer(out).range();
  Recalibrate(q, batches, nullptr);
  EXPECT_EQ(q.activation_quantizer(out).range(), after);
}

TEST_P(QuantizedModelTest, CalibrationRejectsNonFiniteActivationsNamingTheTap) {
  QuantizedModel q(Model(), QuantConfig{});
  at::Tensor x = Eval();
  x[0][0][0][0] = std::numeric_limits<float>::quiet_NaN();
  try {
    Calibrate(q, {x}, nullptr);
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'input'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(q.mode(), QuantizedModel::Mode::kFloat);
}

INSTANTIATE_TEST_SUITE_P(Arch, QuantizedModelTest, ::testing::Values("vit", "swin"));

}  // namespace
}  // namespace psaq::quant
