// QuantizedDetector on the tiny random-init Swin Mask R-CNN: modes, scopes, calibration.
#include "quant/quantized_detector.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/detect/load_detector.h"
#include "quant/calibration.h"
#include "quant/export.h"
#include "quant/metrics.h"
#include "tests/model/detect/tiny_detector.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/tensor_near.h"

namespace psaq::quant {
namespace {

// Random-init weights score about 1/(K+1) per class: a low threshold keeps detections, so the
// mask head runs on the forward's own boxes.
detect::DetectorConfig Config(double score_thr = 0.01) {
  detect::DetectorConfig c = detect::testing::TinyDetectorConfig();
  c.score_thr = score_thr;
  c.max_per_img = 10;
  return c;
}

detect::DetectorPtr Detector(double score_thr = 0.01) {
  at::manual_seed(11);
  return detect::CreateDetector(Config(score_thr));
}

std::vector<at::Tensor> Batches(int n, int64_t seed) {
  at::manual_seed(seed);
  std::vector<at::Tensor> out;
  for (int i = 0; i < n; ++i) out.push_back(at::randn({2, 3, 64, 64}));
  return out;
}

void ExpectSameOutputs(const detect::DetectorOutputs& a, const detect::DetectorOutputs& b) {
  ASSERT_EQ(a.fpn.size(), b.fpn.size());
  for (size_t l = 0; l < a.fpn.size(); ++l) EXPECT_TENSOR_IDENTICAL(a.fpn[l], b.fpn[l]);
  EXPECT_TENSOR_IDENTICAL(a.cls_score, b.cls_score);
  EXPECT_TENSOR_IDENTICAL(a.bbox_pred, b.bbox_pred);
  EXPECT_TENSOR_IDENTICAL(a.mask_logits, b.mask_logits);
  ASSERT_EQ(a.detections.size(), b.detections.size());
  for (size_t i = 0; i < a.detections.size(); ++i) {
    EXPECT_TENSOR_IDENTICAL(a.detections[i].boxes, b.detections[i].boxes);
    EXPECT_TENSOR_IDENTICAL(a.detections[i].scores, b.detections[i].scores);
    EXPECT_TENSOR_IDENTICAL(a.detections[i].masks, b.detections[i].masks);
  }
}

TEST(QuantizedDetectorTest, FloatModeIsTheFloatDetectorBitForBit) {
  detect::DetectorPtr d = Detector();
  QuantizedDetector q(d);
  const at::Tensor x = Batches(1, 5)[0];
  at::NoGradGuard no_grad;
  const detect::DetectorOutputs want = d->forward(x);
  ASSERT_GT(want.mask_logits.size(0), 0) << "the test needs detections";
  ExpectSameOutputs(q.Forward(x), want);
  Calibrate(q, Batches(2, 6), nullptr);
  q.SetMode(QuantizedDetector::Mode::kFloat);
  ExpectSameOutputs(q.Forward(x), want);
}

TEST(QuantizedDetectorTest, ThirtyTwoBitsQuantizedIsTheFloatDetector) {
  detect::DetectorPtr d = Detector();
  QuantConfig config;
  config.weight_bits = 32;
  config.act_bits = 32;
  QuantizedDetector q(d, config);
  const at::Tensor x = Batches(1, 5)[0];
  at::NoGradGuard no_grad;
  Calibrate(q, Batches(2, 6), nullptr);
  ASSERT_EQ(q.mode(), QuantizedDetector::Mode::kQuantized);
  ExpectSameOutputs(q.Forward(x), d->forward(x));
}

// The FPN levels' SQNR (dB) against the float detector, after calibrating on 4 random images.
std::vector<double> FpnSqnr(int bits) {
  detect::DetectorPtr d = Detector();
  QuantConfig config;
  config.weight_bits = bits;
  config.act_bits = bits;
  QuantizedDetector q(d, config);
  const at::Tensor x = Batches(1, 5)[0];
  at::NoGradGuard no_grad;
  Calibrate(q, Batches(2, 6), nullptr);
  const detect::DetectorOutputs want = d->forward(x);
  const detect::DetectorOutputs got = q.Forward(x);
  std::vector<double> out;
  for (size_t l = 0; l < want.fpn.size(); ++l) {
    EXPECT_FALSE(at::equal(got.fpn[l], want.fpn[l])) << l;
    out.push_back(Sqnr(want.fpn[l], got.fpn[l]));
  }
  return out;
}

// Measured (LibTorch 1.13 CPU, this seed), FPN levels 0..4: W8A8 24.2 24.8 23.4 20.3 19.2 dB,
// W4A4 6.9 6.5 5.5 4.3 4.5 dB. The bounds catch a broken quantizer (or one that does nothing)
// with margin for a different random init.
TEST(QuantizedDetectorTest, EightBitsDiffersButStaysClose) {
  const std::vector<double> w8 = FpnSqnr(8);
  const std::vector<double> w4 = FpnSqnr(4);
  for (size_t l = 0; l < w8.size(); ++l) {
    EXPECT_GT(w8[l], 15.0) << "FPN level " << l;
    EXPECT_GT(w8[l], w4[l] + 6.0) << "FPN level " << l;
  }
}

// Stopping after the FPN or RPN (what V2's teacher-student comparison needs) gives the quantized
// forward's values bit for bit; calibration refuses to stop early (it must reach every tap).
TEST(QuantizedDetectorTest, StoppingEarlyKeepsTheQuantizedValues) {
  detect::DetectorPtr d = Detector();
  QuantizedDetector q(d);
  const at::Tensor x = Batches(1, 5)[0];
  at::NoGradGuard no_grad;
  q.SetMode(QuantizedDetector::Mode::kCalibrate);
  EXPECT_THROW(q.Forward(x, detect::DetectorStage::kFpn), c10::Error);
  Calibrate(q, Batches(2, 6), nullptr);
  ASSERT_EQ(q.mode(), QuantizedDetector::Mode::kQuantized);
  const detect::DetectorOutputs full = q.Forward(x);
  const detect::DetectorOutputs fpn = q.Forward(x, detect::DetectorStage::kFpn);
  const detect::DetectorOutputs rpn = q.Forward(x, detect::DetectorStage::kRpn);
  ASSERT_EQ(fpn.fpn.size(), full.fpn.size());
  for (size_t l = 0; l < full.fpn.size(); ++l) {
    EXPECT_TENSOR_IDENTICAL(fpn.fpn[l], full.fpn[l]);
    EXPECT_TENSOR_IDENTICAL(rpn.fpn[l], full.fpn[l]);
    EXPECT_TENSOR_IDENTICAL(rpn.rpn.cls[l], full.rpn.cls[l]);
  }
  EXPECT_TRUE(fpn.rpn.cls.empty());
  EXPECT_TRUE(rpn.detections.empty());
  // The heads on the forward's own RoIs: its quantized box-head logits.
  EXPECT_TENSOR_IDENTICAL(q.HeadsOnRois(full.fpn, full.rois).cls_score, full.cls_score);
  q.SetMode(QuantizedDetector::Mode::kCalibrate);
  EXPECT_THROW(q.HeadsOnRois(full.fpn, full.rois), c10::Error);
}

TEST(QuantizedDetectorTest, TapListsAndScopes) {
  detect::DetectorPtr d = Detector();
  // Every Conv/Linear weight of the detector is a weight tap (and nothing else is).
  std::set<std::string> conv_linear;
  for (const auto& p : d->named_parameters()) {
    const std::string& name = p.key();
    if (p.value().dim() >= 2 && name.size() > 7 && name.substr(name.size() - 7) == ".weight" &&
        name.find("relative_position_bias_table") == std::string::npos) {
      conv_linear.insert(name);
    }
  }
  QuantizedDetector all(d);
  std::set<std::string> weights;
  for (int id : all.weight_taps()) weights.insert(all.tap(id).name);
  EXPECT_EQ(weights, conv_linear);
  const std::set<std::string> prefixes = {"backbone.", "neck.", "rpn_head.", "roi_head."};
  std::set<std::string> seen;
  for (int id : all.activation_taps()) {
    const std::string& name = all.tap(id).name;
    for (const std::string& p : prefixes) {
      if (name.compare(0, p.size(), p) == 0) seen.insert(p);
    }
  }
  EXPECT_EQ(seen, prefixes);
  EXPECT_EQ(all.tap(all.activation_taps()[0]).name, kInputTap);

  for (DetectorScope scope :
       {DetectorScope::kBackbone, DetectorScope::kBackboneNeck, DetectorScope::kAll}) {
    QuantizedDetector q(d, QuantConfig{}, scope);
    for (int id : q.weight_taps()) {
      const std::string& name = q.tap(id).name;
      const bool in = name.rfind("backbone.", 0) == 0 ||
                      (scope != DetectorScope::kBackbone && name.rfind("neck.", 0) == 0) ||
                      scope == DetectorScope::kAll;
      EXPECT_EQ(q.in_scope(id), in) << name;
      EXPECT_EQ(q.weight_quantizer(id).bits(), in ? 8 : kBitsOff) << name;
    }
    for (int id : q.activation_taps()) {
      const std::string& name = q.tap(id).name;
      const bool in = InDetectorScope(name, scope);
      EXPECT_EQ(q.in_scope(id), in) << name;
      const int want = !in || IsSoftmaxTap(name) ? kBitsOff : 8;
      EXPECT_EQ(q.activation_quantizer(id).bits(), want) << name;
    }
  }
  // An override wins over the scope.
  QuantConfig config;
  config.bits_overrides["roi_head.bbox_head.fc_cls.weight"] = 6;
  QuantizedDetector o(d, config, DetectorScope::kBackbone);
  EXPECT_EQ(o.weight_quantizer(o.TapId("roi_head.bbox_head.fc_cls.weight")).bits(), 6);
}

TEST(QuantizedDetectorTest, ScopeNamesRoundTripAndBadNamesThrow) {
  for (DetectorScope s :
       {DetectorScope::kBackbone, DetectorScope::kBackboneNeck, DetectorScope::kAll}) {
    EXPECT_EQ(ParseDetectorScope(DetectorScopeName(s)), s);
  }
  EXPECT_THROW(ParseDetectorScope("heads"), std::invalid_argument);
}

TEST(QuantizedDetectorTest, RefusesRepqAndANullDetector) {
  QuantConfig config;
  config.quantizer = QuantizerKind::kRepq;
  try {
    QuantizedDetector q(Detector(), config);
    FAIL() << "repq accepted";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("not supported for detectors"),
              std::string::npos);
  }
  EXPECT_THROW(QuantizedDetector(nullptr), c10::Error);
}

TEST(QuantizedDetectorTest, CalibratesTheMaskHeadWhenNoImageHasADetection) {
  // No class clears a 0.99 threshold on random weights: the forward never reaches the mask head.
  detect::DetectorPtr d = Detector(/*score_thr=*/0.99);
  QuantizedDetector q(d);
  const std::vector<at::Tensor> batches = Batches(2, 6);
  {
    at::NoGradGuard no_grad;
    for (const at::Tensor& b : batches) {
      for (const auto& det : d->forward(b).detections) ASSERT_EQ(det.boxes.size(0), 0);
    }
  }
  Calibrate(q, batches, nullptr);
  const int logits = q.TapId("roi_head.mask_head.conv_logits.out");
  EXPECT_TRUE(q.observer(logits).initialized());
  EXPECT_TRUE(q.activation_quantizer(logits).has_range());
}

TEST(QuantizedDetectorTest, PixelBoxIsTheNormalisedByteRange) {
  detect::DetectorPtr d = Detector();
  QuantConfig config;
  config.input_range = InputRange::kPixelBox;
  QuantizedDetector q(d, config);
  Calibrate(q, Batches(1, 6), nullptr);
  const auto [lo, hi] = q.activation_quantizer(q.TapId(kInputTap)).range();
  const detect::DetectorConfig& c = d->config();
  EXPECT_DOUBLE_EQ(lo, std::min({-c.mean[0] / c.std[0], -c.mean[1] / c.std[1],
                                 -c.mean[2] / c.std[2]}));
  EXPECT_DOUBLE_EQ(hi, std::max({(255 - c.mean[0]) / c.std[0], (255 - c.mean[1]) / c.std[1],
                                 (255 - c.mean[2]) / c.std[2]}));
}

TEST(QuantizedDetectorExportTest, ReloadIsBitIdenticalForEveryScope) {
  const testing::TempDir dir;
  for (DetectorScope scope :
       {DetectorScope::kBackbone, DetectorScope::kBackboneNeck, DetectorScope::kAll}) {
    detect::DetectorPtr d = Detector();
    QuantConfig config;
    config.weight_bits = 4;
    config.bits_overrides["neck.fpn_convs.0.conv.weight"] = 6;
    QuantizedDetector q(d, config, scope);
    Calibrate(q, Batches(2, 6), nullptr);
    const std::string path = dir.Sub("det_" + DetectorScopeName(scope) + ".safetensors");
    ExportQuantizedDetector(q, path, {"noise", 4, "test"});
    ImportedDetector back = ImportQuantizedDetector(path);
    EXPECT_EQ(back.metadata.at("quant_scope"), DetectorScopeName(scope));
    EXPECT_EQ(back.detector->scope(), scope);
    EXPECT_EQ(back.detector->mode(), QuantizedDetector::Mode::kQuantized);
    for (int id : q.weight_taps()) {
      EXPECT_EQ(back.detector->weight_quantizer(id).bits(), q.weight_quantizer(id).bits())
          << q.tap(id).name;
    }
    const at::Tensor x = Batches(1, 5)[0];
    at::NoGradGuard no_grad;
    ExpectSameOutputs(back.detector->Forward(x), q.Forward(x));
    // A classifier import refuses it.
    try {
      ImportQuantizedModel(path);
      FAIL() << "classifier import accepted a detector export";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("quantized detector export"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace psaq::quant
