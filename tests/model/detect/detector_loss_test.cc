// Training targets and losses of the detector (rpn_targets.h, roi_targets.h, mask_targets.h,
// detector_loss.h) on hand-checked cases, and a tiny detector whose losses fall when trained on
// them.
#include "model/detect/detector_loss.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

#include "model/detect/anchors.h"
#include "model/detect/mask_targets.h"
#include "model/detect/roi_targets.h"
#include "model/detect/rpn_targets.h"
#include "tests/model/detect/tiny_detector.h"

namespace psaq::detect {
namespace {

at::Generator Gen(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

TEST(RpnTargetsTest, GtEqualToAnAnchorIsPositiveWithZeroDelta) {
  const AnchorGenerator gen;
  const at::Tensor anchors = gen.GridAnchors(0, 8, 8);  // stride 4, 32 x 32 image
  const at::Tensor valid = at::ones({anchors.size(0)}, at::kBool);
  const int64_t k = (3 * 8 + 4) * 3 + 1;  // cell (y 3, x 4), ratio 1: a 32 x 32 box at (16, 12)
  const at::Tensor gt = anchors.slice(0, k, k + 1).clone();
  const RpnTargets t =
      ComputeRpnTargets(anchors, valid, gt, {1, 1, 1, 1}, RpnAssignerOptions(), {256, 0.5, -1}, Gen(1));
  EXPECT_EQ(t.labels[k].item<float>(), 1.0f);
  EXPECT_EQ(t.label_weights[k].item<float>(), 1.0f);
  EXPECT_EQ(t.delta_weights[k].item<float>(), 1.0f);
  EXPECT_TRUE(t.delta_targets[k].abs().max().item<float>() < 1e-6f);
  // 192 anchors: every positive and negative is sampled (fewer than 256); no third label.
  EXPECT_EQ(t.num_pos, t.labels.sum().item<float>());
  EXPECT_EQ(t.num_pos + t.num_neg, static_cast<int64_t>(t.label_weights.sum().item<float>()));
  EXPECT_EQ(t.delta_weights.sum().item<float>(), t.labels.sum().item<float>());
  EXPECT_DOUBLE_EQ(t.avg_factor(), static_cast<double>(t.num_pos + t.num_neg));
}

TEST(RpnTargetsTest, NoGtMeansAllSampledNegativeAndAvgFactorCountsOnePositive) {
  const AnchorGenerator gen;
  const at::Tensor anchors = gen.GridAnchors(0, 16, 16);  // 768 anchors
  const at::Tensor valid = at::ones({anchors.size(0)}, at::kBool);
  const RpnTargets t = ComputeRpnTargets(anchors, valid, at::zeros({0, 4}), {1, 1, 1, 1},
                                         RpnAssignerOptions(), {256, 0.5, -1}, Gen(2));
  EXPECT_EQ(t.num_pos, 0);
  EXPECT_EQ(t.num_neg, 256);
  EXPECT_EQ(t.labels.sum().item<float>(), 0.0f);
  EXPECT_DOUBLE_EQ(t.avg_factor(), 257.0);  // mmdet's max(#pos, 1) + max(#neg, 1)
}

TEST(RpnTargetsTest, ValidFlagsCoverOnlyTheImagesCells) {
  // Level strides 4 and 8, maps 8x8 and 4x4 (a 32x32 input), image 20 high x 32 wide, 1 anchor.
  const at::Tensor v = AnchorValidFlags({{8, 8}, {4, 4}}, {4, 8}, 1, 20, 32);
  ASSERT_EQ(v.size(0), 64 + 16);
  EXPECT_EQ(v.slice(0, 0, 40).all().item<bool>(), true);    // rows 0..4 (ceil(20/4) = 5)
  EXPECT_EQ(v.slice(0, 40, 64).any().item<bool>(), false);  // rows 5..7
  EXPECT_EQ(v.slice(0, 64, 76).all().item<bool>(), true);   // rows 0..2 (ceil(20/8) = 3)
  EXPECT_EQ(v.slice(0, 76, 80).any().item<bool>(), false);
  // Invalid anchors are never sampled.
  const AnchorGenerator gen(AnchorGeneratorOptions{{4, 8}, {8}, {1.0}, {}, 0.0});
  const at::Tensor anchors = at::cat(gen.GridAnchors({{8, 8}, {4, 4}}));
  const RpnTargets t = ComputeRpnTargets(anchors, v, at::tensor({0.f, 0.f, 30.f, 18.f}).view({1, 4}),
                                         {1, 1, 1, 1}, RpnAssignerOptions(), {256, 0.5, -1}, Gen(3));
  EXPECT_EQ(t.label_weights.masked_select(v.logical_not()).sum().item<float>(), 0.0f);
  EXPECT_EQ(t.label_weights.masked_select(v).sum().item<float>(),
            static_cast<float>(t.num_pos + t.num_neg));
  EXPECT_GT(t.num_pos, 0);
}

TEST(RoiTargetsTest, GtBecomesAPositiveAndNegativesAreBackground) {
  const at::Tensor gt = at::tensor({10.f, 10.f, 50.f, 40.f, 60.f, 60.f, 90.f, 100.f}).view({2, 4});
  const at::Tensor labels = at::tensor({2, 0}, at::kLong);
  // A proposal equal to gt 1, one overlapping gt 0 at IoU 0.75, one far away.
  const at::Tensor proposals =
      at::tensor({60.f, 60.f, 90.f, 100.f, 10.f, 10.f, 40.f, 40.f, 100.f, 0.f, 120.f, 20.f})
          .view({3, 4});
  const RoiTargets t = ComputeRoiTargets(proposals, gt, labels, 3, {0.1, 0.1, 0.2, 0.2},
                                         RcnnAssignerOptions(), {512, 0.25, -1}, Gen(4));
  // 5 candidates (2 gt + 3 proposals): 4 positives, 1 negative, all sampled.
  ASSERT_EQ(t.num_pos, 4);
  ASSERT_EQ(t.boxes.size(0), 5);
  EXPECT_TRUE(t.pos_gt_inds.equal(at::tensor({0, 1, 1, 0}, at::kLong)));
  EXPECT_TRUE(t.labels.equal(at::tensor({2, 0, 0, 2, 3}, at::kLong)));
  // The gt boxes themselves and the proposal equal to gt 1 have zero deltas.
  EXPECT_TRUE(t.delta_targets.slice(0, 0, 3).abs().max().item<float>() < 1e-6f);
  // Proposal (10, 10, 40, 40) -> gt (10, 10, 50, 40): dx = 5/30/0.1, dw = log(40/30)/0.2.
  EXPECT_NEAR(t.delta_targets[3][0].item<float>(), 5.0 / 30.0 / 0.1, 1e-5);
  EXPECT_NEAR(t.delta_targets[3][1].item<float>(), 0.0, 1e-6);
  EXPECT_NEAR(t.delta_targets[3][2].item<float>(), std::log(40.0 / 30.0) / 0.2, 1e-5);
  EXPECT_EQ(t.delta_targets[4].abs().sum().item<float>(), 0.0f);
}

TEST(MaskTargetsTest, FullBoxMaskIsAllOnesAndHalfMaskSplits) {
  at::Tensor masks = at::zeros({2, 64, 64}, at::kBool);
  masks[0].slice(0, 8, 40).slice(1, 16, 48).fill_(true);  // box (16, 8, 48, 40)
  masks[1].slice(0, 0, 64).slice(1, 0, 32).fill_(true);   // left half
  const at::Tensor boxes = at::tensor({16.f, 8.f, 48.f, 40.f, 0.f, 0.f, 64.f, 64.f}).view({2, 4});
  const at::Tensor t = MaskTargets(boxes, masks, at::tensor({0, 1}, at::kLong), 28);
  ASSERT_EQ(t.sizes().vec(), (std::vector<int64_t>{2, 28, 28}));
  EXPECT_EQ(t[0].min().item<float>(), 1.0f);
  EXPECT_EQ(t[1].slice(1, 0, 14).min().item<float>(), 1.0f);
  EXPECT_EQ(t[1].slice(1, 14, 28).max().item<float>(), 0.0f);
  // A box past the image is clipped first (mmdet): the same target as the clipped box.
  const at::Tensor past = MaskTargets(at::tensor({16.f, 8.f, 48.f, 40.f, -10.f, -5.f, 80.f, 64.f}).view({2, 4}),
                                      masks, at::tensor({0, 1}, at::kLong), 28);
  EXPECT_TRUE(past.equal(t));
  EXPECT_EQ(MaskTargets(at::zeros({0, 4}), masks, at::zeros({0}, at::kLong), 28).size(0), 0);
}

// A batch of random images with 1-2 rectangles each and rectangular masks.
void TinyBatch(int64_t B, int64_t S, at::Tensor& images, std::vector<DetectionGroundTruth>& gt,
               std::vector<std::pair<int64_t, int64_t>>& sizes) {
  at::manual_seed(7);
  images = at::randn({B, 3, S, S}) * 0.1;
  for (int64_t b = 0; b < B; ++b) {
    DetectionGroundTruth g;
    const int64_t n = 1 + b % 2;
    g.boxes = at::zeros({n, 4});
    g.labels = at::zeros({n}, at::kLong);
    g.masks = at::zeros({n, S, S}, at::kBool);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t x = 10 + 40 * i + 5 * b, y = 20 + 30 * i, w = 40 + 10 * i, h = 30 + 5 * b;
      g.boxes[i] = at::tensor({float(x), float(y), float(x + w), float(y + h)});
      g.labels[i] = (b + i) % 3;
      g.masks[i].slice(0, y, y + h).slice(1, x, x + w).fill_(true);
      images[b].slice(1, y, y + h).slice(2, x, x + w) += 1.0 + static_cast<double>((b + i) % 3);
    }
    gt.push_back(g);
    sizes.emplace_back(S, S);
  }
}

std::vector<at::Generator> Gens(int64_t B, uint64_t seed) {
  std::vector<at::Generator> g;
  for (int64_t b = 0; b < B; ++b) g.push_back(Gen(seed * 100 + b));
  return g;
}

TEST(MaskRcnnLossesTest, TermsAreFiniteAndEveryParameterGetsAGradient) {
  at::manual_seed(0);
  MaskRcnn model(testing::TinyDetectorConfig());
  at::Tensor images;
  std::vector<DetectionGroundTruth> gt;
  std::vector<std::pair<int64_t, int64_t>> sizes;
  TinyBatch(2, 128, images, gt, sizes);
  auto gens = Gens(2, 1);
  const DetectorLosses losses = MaskRcnnLosses(model, images, gt, sizes, gens);
  for (int i = 0; i < DetectorLosses::kNumTerms; ++i) {
    EXPECT_TRUE(std::isfinite(losses.terms[i].sum.item<double>())) << DetectorLosses::Names()[i];
    EXPECT_GT(losses.terms[i].count, 0) << DetectorLosses::Names()[i];
  }
  // With random heads the RPN's BCE is about log 2 per sampled anchor.
  EXPECT_NEAR(losses.terms[0].sum.item<double>() / losses.terms[0].count, std::log(2.0), 0.2);
  // The box head's CE is about log(K + 1) = log 4 per sampled RoI.
  EXPECT_NEAR(losses.terms[2].sum.item<double>() / losses.terms[2].count, std::log(4.0), 0.3);
  losses.Total().backward();
  for (const auto& p : model.named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
  }
  // The same generator states give the same losses.
  auto again = Gens(2, 1);
  const DetectorLosses second = MaskRcnnLosses(model, images, gt, sizes, again);
  EXPECT_EQ(second.Total().item<double>(), losses.Total().item<double>());
}

TEST(MaskRcnnLossesTest, LossFallsOverTwentyAdamSteps) {
  at::manual_seed(0);
  MaskRcnn model(testing::TinyDetectorConfig());
  at::Tensor images;
  std::vector<DetectionGroundTruth> gt;
  std::vector<std::pair<int64_t, int64_t>> sizes;
  TinyBatch(4, 160, images, gt, sizes);
  torch::optim::Adam opt(model.parameters(), torch::optim::AdamOptions(2e-3));
  double first = 0, last = 0;
  std::array<double, DetectorLosses::kNumTerms> first_terms{}, last_terms{};
  for (int step = 0; step < 20; ++step) {
    auto gens = Gens(4, static_cast<uint64_t>(step));
    opt.zero_grad();
    const DetectorLosses losses = MaskRcnnLosses(model, images, gt, sizes, gens);
    const at::Tensor total = losses.Total();
    total.backward();
    opt.step();
    std::array<double, DetectorLosses::kNumTerms> terms{};
    for (int i = 0; i < DetectorLosses::kNumTerms; ++i) {
      terms[i] = losses.terms[i].sum.item<double>() / std::max(losses.terms[i].count, 1.0);
    }
    if (step == 0) first = total.item<double>(), first_terms = terms;
    if (step == 19) last = total.item<double>(), last_terms = terms;
  }
  EXPECT_LT(last, 0.6 * first) << "first " << first << " last " << last;
  // Classification terms of both stages fall (box terms start near 0 and may rise first).
  EXPECT_LT(last_terms[0], first_terms[0]);
  EXPECT_LT(last_terms[2], first_terms[2]);
  EXPECT_LT(last_terms[4], first_terms[4]);
}

}  // namespace
}  // namespace psaq::detect
