#include "gen/feature_capture.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>

#include "model/safetensors.h"
#include "quant/calibration.h"
#include "quant/quantized_model.h"
#include "tests/testing/tiny_models.h"
#include "tests/testing/tolerances.h"

namespace psaq::gen {
namespace {

using ::psaq::testing::kFloat64ParityRel;

// The captured features of the float64 golden models equal timm's, block by block.
void CheckGolden(const std::string& name) {
  model::ModelPtr m = testing::GoldenTeacher(name);
  m->to(at::kDouble);
  const model::SafetensorsFile io =
      model::ReadSafetensors(::psaq::testing::GoldenDir() + "/" + name + ".io.safetensors");
  FeatureCapture capture(*m, {true, true});
  at::NoGradGuard no_grad;
  at::Tensor logits = capture.Forward(io.Get("input64"));
  EXPECT_TENSOR_NEAR_REL(logits, io.Get("logits64"), kFloat64ParityRel);
  ASSERT_EQ(capture.av_means().size(), m->block_paths().size());
  for (size_t i = 0; i < capture.av_means().size(); ++i) {
    const std::string k = std::to_string(i);
    EXPECT_TENSOR_NEAR_REL(capture.av_means()[i], io.Get("av_headmean64." + k), kFloat64ParityRel);
    EXPECT_TENSOR_NEAR_REL(capture.block_outputs()[i], io.Get("block_out64." + k),
                           kFloat64ParityRel);
  }
  EXPECT_EQ(m->taps().observer(), nullptr);  // detached after the call
}

TEST(FeatureCaptureTest, ViTFeaturesMatchGoldenInBlockOrder) { CheckGolden("vit_p4_d48"); }
TEST(FeatureCaptureTest, SwinFeaturesMatchGoldenInBlockOrder) { CheckGolden("swin_p4_w7_d16"); }

TEST(FeatureCaptureTest, ForwardingToQuantizedModelReproducesItsOutput) {
  for (const std::string arch : {"vit", "swin"}) {
    model::ModelPtr m = testing::TinyModel(arch);
    quant::QuantizedModel q(m, testing::Bits(4, 4));
    const auto batches = testing::Batches(m->config(), 1, 4, 9);
    quant::Calibrate(q, batches, nullptr);
    at::NoGradGuard no_grad;
    const at::Tensor expected = q.Forward(batches[0]);
    FeatureCapture capture(*m, {true, true}, &q);
    const at::Tensor got = capture.Forward(batches[0]);
    EXPECT_TENSOR_IDENTICAL(got, expected);
    EXPECT_EQ(capture.av_means().size(), m->block_paths().size());
    // In kQuantized mode the features are the quantized model's: they differ from the float
    // model's.
    FeatureCapture float_capture(*m, {false, true});
    float_capture.Forward(batches[0]);
    EXPECT_FALSE(at::equal(float_capture.block_outputs().back(), capture.block_outputs().back()))
        << arch;
  }
}

TEST(FeatureCaptureTest, RejectsQuantizedModelOfAnotherModel) {
  model::ModelPtr a = testing::TinyModel("vit");
  model::ModelPtr b = testing::TinyModel("vit");
  quant::QuantizedModel q(b);
  EXPECT_THROW(FeatureCapture(*a, {}, &q), c10::Error);
}

}  // namespace
}  // namespace psaq::gen
