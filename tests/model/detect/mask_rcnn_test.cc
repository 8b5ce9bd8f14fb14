// The detector's end-to-end test-time forward on a tiny random detector: output shapes and
// validity (boxes inside the image, scores sorted above score_thr, at most max_per_img per image,
// labels in range, masks inside their boxes), batch independence, a forward with hand-set head
// weights whose detections are predictable, and the taps.
#include "model/detect/mask_rcnn.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "model/detect/anchors.h"
#include "model/detect/load_detector.h"
#include "tests/model/detect/tiny_detector.h"
#include "tests/model/tap_observers.h"
#include "tests/testing/tensor_near.h"
#include "tests/testing/tolerances.h"

namespace psaq::detect {
namespace {

// Sum of |coordinate differences| between a decoded zero-delta box and its clipped anchor: both are
// float32 values below 200 px, recomputed through centre/size (a few ulps each).
constexpr double kAnchorMatchAbs = 1e-3;

void ExpectValid(const Detections& d, const DetectorConfig& c, int64_t H, int64_t W) {
  const int64_t n = d.boxes.size(0);
  ASSERT_EQ(d.boxes.sizes().vec(), (std::vector<int64_t>{n, 4}));
  ASSERT_EQ(d.scores.sizes().vec(), (std::vector<int64_t>{n}));
  ASSERT_EQ(d.labels.sizes().vec(), (std::vector<int64_t>{n}));
  ASSERT_EQ(d.masks.sizes().vec(), (std::vector<int64_t>{n, H, W}));
  EXPECT_EQ(d.masks.scalar_type(), at::kBool);
  EXPECT_EQ(d.labels.scalar_type(), at::kLong);
  EXPECT_LE(n, c.max_per_img);
  if (n == 0) return;
  const at::Tensor b = d.boxes.to(at::kDouble);
  EXPECT_TRUE((b.select(1, 0) >= 0).all().item<bool>());
  EXPECT_TRUE((b.select(1, 1) >= 0).all().item<bool>());
  EXPECT_TRUE((b.select(1, 2) <= W).all().item<bool>());
  EXPECT_TRUE((b.select(1, 3) <= H).all().item<bool>());
  EXPECT_TRUE((b.select(1, 2) >= b.select(1, 0)).all().item<bool>());
  EXPECT_TRUE((b.select(1, 3) >= b.select(1, 1)).all().item<bool>());
  EXPECT_TRUE((d.scores > c.score_thr).all().item<bool>());
  if (n > 1) {
    EXPECT_TRUE((d.scores.slice(0, 0, n - 1) >= d.scores.slice(0, 1, n)).all().item<bool>());
  }
  EXPECT_TRUE((d.labels >= 0).all().item<bool>());
  EXPECT_TRUE((d.labels < c.num_classes).all().item<bool>());
  // Masks lie inside their box, widened by mmdet's one-pixel paste margin.
  for (int64_t i = 0; i < n; ++i) {
    const auto x0 =
        std::max<int64_t>(static_cast<int64_t>(std::floor(b[i][0].item<double>())) - 1, 0);
    const auto y0 =
        std::max<int64_t>(static_cast<int64_t>(std::floor(b[i][1].item<double>())) - 1, 0);
    const auto x1 =
        std::min<int64_t>(static_cast<int64_t>(std::ceil(b[i][2].item<double>())) + 1, W);
    const auto y1 =
        std::min<int64_t>(static_cast<int64_t>(std::ceil(b[i][3].item<double>())) + 1, H);
    const int64_t inside = d.masks[i].slice(0, y0, y1).slice(1, x0, x1).sum().item<int64_t>();
    EXPECT_EQ(inside, d.masks[i].sum().item<int64_t>()) << "mask " << i << " leaves its box";
  }
}

TEST(MaskRcnnTest, TinyRandomDetectorGivesValidOutputs) {
  torch::manual_seed(7);
  const DetectorConfig c = testing::TinyDetectorConfig();
  DetectorPtr det = CreateDetector(c);
  const int64_t H = 64, W = 96;
  const DetectorOutputs out = det->forward(at::randn({2, 3, H, W}));
  ASSERT_EQ(out.backbone.size(), 4u);
  ASSERT_EQ(out.fpn.size(), 5u);
  const std::vector<int64_t> strides = {4, 8, 16, 32, 64};
  for (size_t l = 0; l < 5; ++l) {
    const int64_t h = (H + strides[l] - 1) / strides[l], w = (W + strides[l] - 1) / strides[l];
    EXPECT_EQ(out.fpn[l].sizes().vec(), (std::vector<int64_t>{2, 16, h, w})) << l;
    EXPECT_EQ(out.rpn.cls[l].sizes().vec(), (std::vector<int64_t>{2, 3, h, w})) << l;
    EXPECT_EQ(out.rpn.reg[l].sizes().vec(), (std::vector<int64_t>{2, 12, h, w})) << l;
  }
  ASSERT_EQ(out.proposals.size(), 2u);
  int64_t rois = 0;
  for (int b = 0; b < 2; ++b) {
    EXPECT_GT(out.proposals[b].size(0), 0);
    EXPECT_LE(out.proposals[b].size(0), c.rpn_max_per_img);
    rois += out.proposals[b].size(0);
  }
  EXPECT_EQ(out.rois.sizes().vec(), (std::vector<int64_t>{rois, 5}));
  EXPECT_EQ(out.cls_score.sizes().vec(), (std::vector<int64_t>{rois, 4}));
  EXPECT_EQ(out.bbox_pred.sizes().vec(), (std::vector<int64_t>{rois, 12}));
  ASSERT_EQ(out.detections.size(), 2u);
  int64_t total = 0;
  for (const Detections& d : out.detections) {
    ExpectValid(d, c, H, W);
    total += d.boxes.size(0);
  }
  EXPECT_GT(total, 0) << "a random detector with 3 classes should pass score_thr 0.05";
  EXPECT_EQ(out.mask_logits.sizes().vec(), (std::vector<int64_t>{total, 3, 28, 28}));
}

TEST(MaskRcnnTest, ImagesOfABatchAreIndependent) {
  torch::manual_seed(8);
  DetectorPtr det = CreateDetector(testing::TinyDetectorConfig());
  det->to(at::kDouble);
  const at::Tensor images = at::randn({2, 3, 64, 64}, at::kDouble);
  const DetectorOutputs both = det->forward(images);
  const DetectorOutputs second = det->forward(images.slice(0, 1, 2));
  const Detections& a = both.detections[1];
  const Detections& b = second.detections[0];
  ASSERT_EQ(a.boxes.size(0), b.boxes.size(0));
  EXPECT_TENSOR_NEAR_REL(a.boxes, b.boxes, psaq::testing::kFloat64ParityRel);
  EXPECT_TENSOR_NEAR_REL(a.scores, b.scores, psaq::testing::kFloat64ParityRel);
  EXPECT_TENSOR_IDENTICAL(a.labels, b.labels);
  EXPECT_TENSOR_IDENTICAL(a.masks, b.masks);
}

// Zero box deltas, a class-1 bias that dominates the softmax and a large mask bias: every
// detection is class 1 with score softmax(bias)[1], its box is a clipped anchor (proposals are
// anchors decoded with zero deltas), and its mask fills the box.
TEST(MaskRcnnTest, HandSetHeadsGivePredictableDetections) {
  torch::manual_seed(9);
  const DetectorConfig c = testing::TinyDetectorConfig();
  DetectorPtr det = CreateDetector(c);
  {
    torch::NoGradGuard g;
    auto p = det->named_parameters();
    p["rpn_head.rpn_reg.weight"].zero_();
    p["rpn_head.rpn_reg.bias"].zero_();
    p["roi_head.bbox_head.fc_cls.weight"].zero_();
    p["roi_head.bbox_head.fc_cls.bias"].copy_(at::tensor({0.f, 5.f, 0.f, 0.f}));
    p["roi_head.bbox_head.fc_reg.weight"].zero_();
    p["roi_head.bbox_head.fc_reg.bias"].zero_();
    p["roi_head.mask_head.conv_logits.weight"].zero_();
    p["roi_head.mask_head.conv_logits.bias"].fill_(20.0);
  }
  const int64_t H = 64, W = 64;
  const DetectorOutputs out = det->forward(at::randn({1, 3, H, W}));
  const Detections& d = out.detections[0];
  ExpectValid(d, c, H, W);
  ASSERT_GT(d.boxes.size(0), 0);
  EXPECT_TRUE((d.labels == 1).all().item<bool>());
  const double e5 = std::exp(5.0);
  EXPECT_TENSOR_NEAR_REL(d.scores, at::full({d.boxes.size(0)}, e5 / (e5 + 3.0)),
                         psaq::testing::kFloat32ParityRel);
  // Every box is one of the clipped anchors.
  AnchorGeneratorOptions ao;
  const AnchorGenerator gen(ao);
  std::vector<at::Tensor> anchors;
  for (int l = 0; l < 5; ++l) {
    anchors.push_back(gen.GridAnchors(l, out.fpn[l].size(2), out.fpn[l].size(3)));
  }
  at::Tensor all = at::cat(anchors);
  all = at::stack({all.select(1, 0).clamp(0, W), all.select(1, 1).clamp(0, H),
                   all.select(1, 2).clamp(0, W), all.select(1, 3).clamp(0, H)},
                  1);
  int checked = 0;
  for (int64_t i = 0; i < d.boxes.size(0); ++i) {
    const double dist = (all - d.boxes[i]).abs().sum(1).min().item<double>();
    EXPECT_LT(dist, kAnchorMatchAbs) << "box " << i << " is not a clipped anchor";
    // The mask covers every pixel whose centre is at least half a mask cell (box / 28 / 2)
    // inside the box: there grid_sample interpolates between mask cells only (at the edge it
    // blends with the zero padding, as mmdet's paste does).
    const at::Tensor bd = d.boxes[i].to(at::kDouble);
    const double hx = (bd[2].item<double>() - bd[0].item<double>()) / 56.0;
    const double hy = (bd[3].item<double>() - bd[1].item<double>()) / 56.0;
    const auto px0 = static_cast<int64_t>(std::ceil(bd[0].item<double>() + hx - 0.5));
    const auto py0 = static_cast<int64_t>(std::ceil(bd[1].item<double>() + hy - 0.5));
    const auto px1 = static_cast<int64_t>(std::floor(bd[2].item<double>() - hx - 0.5));
    const auto py1 = static_cast<int64_t>(std::floor(bd[3].item<double>() - hy - 0.5));
    if (px1 >= px0 && py1 >= py0) {
      EXPECT_TRUE(d.masks[i].slice(0, py0, py1 + 1).slice(1, px0, px1 + 1).all().item<bool>())
          << "mask " << i;
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
}

TEST(MaskRcnnTest, EveryTapIsReachedOnceInRegistrationOrder) {
  torch::manual_seed(10);
  DetectorPtr det = CreateDetector(testing::TinyDetectorConfig());
  psaq::testing::RecordingObserver rec;
  {
    model::ScopedTapObserver s(det->taps(), &rec);
    det->forward(at::randn({1, 3, 64, 64}));
  }
  ASSERT_EQ(rec.calls.size(), det->taps().taps().size());
  for (size_t i = 0; i < rec.calls.size(); ++i) {
    EXPECT_EQ(rec.calls[i].id, static_cast<int>(i)) << rec.calls[i].name;
  }
  EXPECT_EQ(rec.calls.front().name, "input");
  EXPECT_EQ(rec.calls.back().name, "roi_head.mask_head.conv_logits.out");
  EXPECT_EQ(det->block_paths().size(), 8u);
  // An observer's replacement is used: zeroing the input changes the FPN features.
  psaq::testing::ReplacingObserver zero({{"input", [](const at::Tensor& x) { return x * 0; }}});
  const at::Tensor x = at::randn({1, 3, 64, 64});
  DetectorOutputs plain = det->forward(x);
  DetectorOutputs zeroed;
  {
    model::ScopedTapObserver s(det->taps(), &zero);
    zeroed = det->forward(x);
  }
  EXPECT_TENSOR_IDENTICAL(zeroed.fpn[0], det->forward(at::zeros_like(x)).fpn[0]);
  EXPECT_GT((zeroed.fpn[0] - plain.fpn[0]).abs().max().item<double>(), 0.0);
}

// Features stops after the FPN or the RPN with forward's values bit for bit, leaves the later
// fields empty, and reaches only the taps before its stop.
TEST(MaskRcnnTest, FeaturesAreForwardsFirstStages) {
  torch::manual_seed(9);
  DetectorPtr det = CreateDetector(testing::TinyDetectorConfig());
  const at::Tensor x = at::randn({2, 3, 64, 64});
  const DetectorOutputs full = det->forward(x);
  for (DetectorStage until : {DetectorStage::kFpn, DetectorStage::kRpn}) {
    const DetectorOutputs part = det->Features(x, until);
    ASSERT_EQ(part.backbone.size(), full.backbone.size());
    for (size_t i = 0; i < full.backbone.size(); ++i)
      EXPECT_TENSOR_IDENTICAL(part.backbone[i], full.backbone[i]);
    ASSERT_EQ(part.fpn.size(), full.fpn.size());
    for (size_t i = 0; i < full.fpn.size(); ++i) EXPECT_TENSOR_IDENTICAL(part.fpn[i], full.fpn[i]);
    if (until == DetectorStage::kRpn) {
      ASSERT_EQ(part.rpn.cls.size(), full.rpn.cls.size());
      for (size_t i = 0; i < full.rpn.cls.size(); ++i) {
        EXPECT_TENSOR_IDENTICAL(part.rpn.cls[i], full.rpn.cls[i]);
        EXPECT_TENSOR_IDENTICAL(part.rpn.reg[i], full.rpn.reg[i]);
      }
    } else {
      EXPECT_TRUE(part.rpn.cls.empty());
    }
    EXPECT_TRUE(part.proposals.empty());
    EXPECT_FALSE(part.cls_score.defined());
    EXPECT_TRUE(part.detections.empty());
  }
  psaq::testing::RecordingObserver recorder;
  {
    model::ScopedTapObserver s(det->taps(), &recorder);
    det->Features(x, DetectorStage::kFpn);
  }
  EXPECT_NE(recorder.Find("neck.fpn_convs.0.conv.out"), nullptr);
  for (const psaq::testing::RecordingObserver::Call& call : recorder.calls) {
    EXPECT_NE(call.name.rfind("rpn_head.", 0), 0u) << call.name;
    EXPECT_NE(call.name.rfind("roi_head.", 0), 0u) << call.name;
  }
  EXPECT_THROW(det->Features(at::randn({1, 3, 64, 48}), DetectorStage::kFpn), c10::Error);
}

// The heads on given RoIs: forward's box-head logits for forward's own RoIs; the mask head on the
// same RoIs, one [K, 2S, 2S] map each.
TEST(MaskRcnnTest, HeadsOnRoisAreForwardsHeads) {
  torch::manual_seed(10);
  const DetectorConfig c = testing::TinyDetectorConfig();
  DetectorPtr det = CreateDetector(c);
  const at::Tensor x = at::randn({2, 3, 64, 64});
  const DetectorOutputs full = det->forward(x);
  ASSERT_GT(full.rois.size(0), 0);
  const RoiHeadOutputs heads = det->HeadsOnRois(full.fpn, full.rois);
  EXPECT_TENSOR_IDENTICAL(heads.cls_score, full.cls_score);
  EXPECT_EQ(heads.mask_logits.sizes().vec(),
            (std::vector<int64_t>{full.rois.size(0), c.num_classes, 2 * c.mask_roi_size,
                                  2 * c.mask_roi_size}));
  EXPECT_THROW(det->HeadsOnRois(full.fpn, full.rois.slice(1, 0, 4)), c10::Error);
}

TEST(MaskRcnnTest, RefusesBadInputShapes) {
  DetectorPtr det = CreateDetector(testing::TinyDetectorConfig());
  EXPECT_THROW(det->forward(at::randn({1, 3, 64, 48})), c10::Error);
  EXPECT_THROW(det->forward(at::randn({3, 64, 64})), c10::Error);
  EXPECT_THROW(det->forward(at::randn({1, 1, 64, 64})), c10::Error);
}

}  // namespace
}  // namespace psaq::detect
