// The detector pieces of data-free generation on a tiny random Mask R-CNN (float64): the
// discrepancy D (0 for identical outputs, positive otherwise, per image, flag parsing), the
// teacher pass (every backbone block's av_mean captured, same outputs as a plain forward) and the
// sample loss's gradient w.r.t. the image (TV and D against central finite differences; the
// entropy term, whose KDE grid is detached by design so finite differences do not apply, against
// the reference entropy's gradient).
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <stdexcept>
#include <vector>

#include "gen/detector_discrepancy.h"
#include "gen/detector_prior.h"
#include "gen/detector_v1.h"
#include "gen/patch_similarity_entropy.h"
#include "model/detect/load_detector.h"
#include "tests/model/detect/tiny_detector.h"

namespace psaq::gen {
namespace {

detect::DetectorPtr TinyDetector(uint64_t seed) {
  torch::manual_seed(seed);
  detect::DetectorPtr d = detect::CreateDetector(detect::testing::TinyDetectorConfig());
  d->to(at::kDouble);
  d->eval();
  for (auto& p : d->parameters()) p.set_requires_grad(false);
  return d;
}

at::Tensor Images(int64_t b, uint64_t seed) {
  torch::manual_seed(seed);
  return at::randn({b, 3, 64, 64}, at::kDouble);
}

// The targets of `out` with, for the RoI term, `det`'s heads on `rois`.
std::vector<at::Tensor> Targets(detect::MaskRcnn& det, const detect::DetectorOutputs& out,
                                const DetectorDiscrepancyOptions& o, const at::Tensor& rois) {
  if (o.roi_weight == 0) return DetectorDiscrepancyTargets(out, o);
  const detect::RoiHeadOutputs heads = det.HeadsOnRois(out.fpn, rois);
  return DetectorDiscrepancyTargets(out, o, &heads, rois);
}

TEST(DetectorDiscrepancyTest, ZeroForIdenticalOutputsAndPositiveOtherwise) {
  detect::DetectorPtr t = TinyDetector(1), s = TinyDetector(1), other = TinyDetector(2);
  const at::Tensor x = Images(2, 3);
  at::NoGradGuard no_grad;
  const detect::DetectorOutputs ot = t->forward(x), os = s->forward(x), oo = other->forward(x);
  ASSERT_GT(ot.rois.size(0), 0);
  for (const char* terms : {"fpn", "rpn", "fpn+rpn", "fpn+roi", "fpn+rpn+roi"}) {
    SCOPED_TRACE(terms);
    const DetectorDiscrepancyOptions o = ParseDetectorDiscrepancy(terms);
    EXPECT_EQ(DetectorDiscrepancyName(o), terms);
    const at::Tensor same =
        DetectorDiscrepancy(Targets(*t, ot, o, ot.rois), Targets(*s, os, o, ot.rois), o);
    ASSERT_EQ(same.sizes().vec(), std::vector<int64_t>{2});
    EXPECT_EQ(same.abs().max().item<double>(), 0.0);
    const at::Tensor diff =
        DetectorDiscrepancy(Targets(*t, ot, o, ot.rois), Targets(*other, oo, o, ot.rois), o);
    EXPECT_TRUE((diff > 0).all().item<bool>()) << diff;
  }
  // The RoI term alone (FPN weight ~0): what the heads add, per image, and 0 for an image
  // without RoIs.
  DetectorDiscrepancyOptions heads_only = ParseDetectorDiscrepancy("fpn+roi");
  heads_only.fpn_weight = 1e-300;
  const at::Tensor first_image_rois = ot.rois.index_select(0, (ot.rois.select(1, 0) == 0)
                                                                   .nonzero().squeeze(1));
  const at::Tensor roi_d = DetectorDiscrepancy(Targets(*t, ot, heads_only, first_image_rois),
                                               Targets(*other, oo, heads_only, first_image_rois),
                                               heads_only);
  EXPECT_GT(roi_d[0].item<double>(), 0);
  EXPECT_LT(roi_d[1].item<double>(), 1e-250);
  // The teacher's and the student's heads must see the same RoIs.
  EXPECT_THROW(DetectorDiscrepancy(Targets(*t, ot, heads_only, ot.rois),
                                   Targets(*other, oo, heads_only, first_image_rois), heads_only),
               c10::Error);
  // Per image: image 1 of a batch has the D it has alone.
  const DetectorDiscrepancyOptions o = ParseDetectorDiscrepancy("fpn+rpn");
  const at::Tensor batch =
      DetectorDiscrepancy(DetectorDiscrepancyTargets(ot, o), DetectorDiscrepancyTargets(oo, o), o);
  const at::Tensor x1 = x.slice(0, 1, 2);
  const at::Tensor alone =
      DetectorDiscrepancy(DetectorDiscrepancyTargets(t->forward(x1), o),
                          DetectorDiscrepancyTargets(other->forward(x1), o), o);
  EXPECT_NEAR(batch[1].item<double>(), alone[0].item<double>(), 1e-12);
}

TEST(DetectorDiscrepancyTest, FpnTermIsTheNormalisedSquaredErrorMeanOverLevels) {
  const std::vector<at::Tensor> t{at::full({1, 2}, 2.0, at::kDouble),
                                  at::full({1, 1}, 1.0, at::kDouble)};
  const std::vector<at::Tensor> s{at::full({1, 2}, 1.0, at::kDouble),
                                  at::full({1, 1}, 3.0, at::kDouble)};
  // Level 0: (1 + 1) / (4 + 4) = 0.25; level 1: 4 / 1 = 4; mean 2.125.
  EXPECT_NEAR(DetectorDiscrepancy(t, s, {1.0, 0.0, 0.0})[0].item<double>(), 2.125, 1e-15);
}

TEST(DetectorDiscrepancyTest, RejectsBadInput) {
  EXPECT_THROW(ParseDetectorDiscrepancy("box"), std::invalid_argument);
  EXPECT_THROW(ParseDetectorDiscrepancy("roi"), std::invalid_argument);  // needs fpn or rpn
  DetectorDiscrepancyOptions roi = ParseDetectorDiscrepancy("fpn+roi");
  detect::DetectorOutputs out;
  out.fpn = {at::zeros({1, 2}, at::kDouble)};
  EXPECT_THROW(DetectorDiscrepancyTargets(out, roi), c10::Error);  // no heads or rois
  const std::vector<at::Tensor> t{at::zeros({1, 2}, at::kDouble)};
  EXPECT_THROW(DetectorDiscrepancy(t, t, {0.0, 0.0, 0.0}), c10::Error);
  EXPECT_THROW(DetectorDiscrepancy(t, {at::zeros({1, 3}, at::kDouble)}, {}), c10::Error);
  EXPECT_THROW(DetectorDiscrepancy(t, {}, {}), c10::Error);
}

TEST(DetectorTeacherTest, CapturesEveryBlockAndKeepsTheOutputs) {
  detect::DetectorPtr d = TinyDetector(1);
  DetectorTeacher teacher(*d);
  const at::Tensor x = Images(2, 4);
  at::NoGradGuard no_grad;
  const DetectorTeacherPass pass = teacher.Forward(x);
  ASSERT_EQ(pass.av_means.size(), d->block_paths().size());
  for (const at::Tensor& a : pass.av_means) {
    EXPECT_EQ(a.dim(), 3);
    EXPECT_EQ(a.size(0) % 2, 0);  // B * windows
  }
  const detect::DetectorOutputs plain = d->forward(x);
  ASSERT_EQ(plain.fpn.size(), pass.outputs.fpn.size());
  for (size_t l = 0; l < plain.fpn.size(); ++l)
    EXPECT_TRUE(plain.fpn[l].equal(pass.outputs.fpn[l]));
  EXPECT_TRUE(teacher.Forward(x, false).av_means.empty());
  // A capture built from a TapSet has no model to run: Forward is refused, Run is the way.
  FeatureCapture capture(d->taps(), d->block_paths());
  EXPECT_THROW(capture.Forward(x), c10::Error);
}

// The sample loss with the student a perturbed copy of the teacher (both float: D is smooth in x).
struct SampleLossFixture {
  detect::DetectorPtr teacher_model = TinyDetector(1);
  detect::DetectorPtr student_model = TinyDetector(2);
  DetectorTeacher teacher{*teacher_model};
  DetectorDiscrepancyOptions d_options = ParseDetectorDiscrepancy("fpn+rpn");
  // When set, D compares the student with these (constant) teacher targets.
  std::vector<at::Tensor> fixed_teacher;
  // The RoIs of the RoI term, held constant (proposal boxes move with x, and D treats them as
  // detached, so finite differences must not move them).
  at::Tensor rois;

  LossTerms Loss(const at::Tensor& x, const V2SampleWeights& w, const KdeOptions& kde) {
    const DetectorTeacherPass t = teacher.Forward(x, w.entropy != 0);
    const at::Tensor d = DetectorDiscrepancy(
        fixed_teacher.empty() ? Targets(*teacher_model, t.outputs, d_options, rois)
                              : fixed_teacher,
        Targets(*student_model, student_model->forward(x), d_options, rois), d_options);
    return DetectorSampleLoss(t, x, 10.0, d, w, kde);
  }
};

// 0: TV + L2; 1: D on the FPN with the teacher's targets held constant (the FPN term's
// normaliser is detached by design, so finite differences through the teacher would differ);
// 2: D on the RPN objectness, through both detectors; 3: the RPN and the RoI-head terms, through
// both detectors (RoIs held constant).
class DetectorSampleLossFdTest : public ::testing::TestWithParam<int> {};

TEST_P(DetectorSampleLossFdTest, GradientsMatchFiniteDifferences) {
  SampleLossFixture f;
  const int which = GetParam();
  const V2SampleWeights w{0.0, which == 0 ? 0.05 : 0.0, which == 0 ? 0.01 : 0.0,
                          which == 0 ? 0.0 : 1.0};
  if (which == 1) f.d_options = ParseDetectorDiscrepancy("fpn");
  if (which == 2) f.d_options = ParseDetectorDiscrepancy("rpn");
  if (which == 3) {
    f.d_options = ParseDetectorDiscrepancy("fpn+rpn+roi");
    f.d_options.fpn_weight = 0;
  }
  at::Tensor x = Images(2, 5).requires_grad_(true);
  if (which == 3) {
    at::NoGradGuard no_grad;
    f.rois = f.teacher_model->forward(x).rois.clone();
    ASSERT_GT(f.rois.size(0), 0);
  }
  if (which == 1) {
    at::NoGradGuard no_grad;
    for (const at::Tensor& t : DetectorDiscrepancyTargets(f.teacher_model->forward(x), f.d_options))
      f.fixed_teacher.push_back(t.clone());
  }
  const LossTerms loss = f.Loss(x, w, {});
  if (which != 0) {
    EXPECT_GT(loss.discrepancy, 0);
  }
  const at::Tensor grad = torch::autograd::grad({loss.total}, {x})[0];
  ASSERT_GT(grad.abs().max().item<double>(), 0);
  at::NoGradGuard no_grad;
  for (uint64_t k = 0; k < 3; ++k) {
    torch::manual_seed(100 + k);
    const at::Tensor v = at::randn_like(x);
    const double h = 1e-5;
    const double plus = f.Loss(x.detach() + h * v, w, {}).total_value;
    const double minus = f.Loss(x.detach() - h * v, w, {}).total_value;
    const double fd = (plus - minus) / (2 * h);
    const double analytic = (grad * v).sum().item<double>();
    // Case 3 runs the box and mask heads (ReLUs after every FC and conv, hundreds of units per
    // RoI): central differences across their kinks differ from the gradient by up to 1.3e-5
    // here (measured 9.3e-6, 1.3e-5, 3.2e-6 at h = 1e-5; 2.4e-6 at worst with h = 1e-7), so its
    // bound is 5e-5 absolute; a missing gradient path would be off by O(|g|) (1e-2 to 1e-1).
    const double tolerance = which == 3 ? 5e-5 : 1e-6 * std::max(1.0, std::abs(fd));
    EXPECT_NEAR(analytic, fd, tolerance) << "direction " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(Terms, DetectorSampleLossFdTest, ::testing::Values(0, 1, 2, 3));

TEST(DetectorSampleLossTest, EntropyIsTheFusedEntropyOverBlocksWithTheReferenceGradient) {
  SampleLossFixture f;
  const V2SampleWeights w{1.0, 0.0, 0.0, 0.0};
  at::Tensor x = Images(2, 6).requires_grad_(true);
  KdeOptions reference;
  reference.implementation = KdeImplementation::kReference;
  const LossTerms fused = f.Loss(x, w, reference);  // forced to the fused entropy
  const at::Tensor g_fused = torch::autograd::grad({fused.total}, {x})[0];
  const DetectorTeacherPass t = f.teacher.Forward(x);
  const at::Tensor ref = PatchSimilarityEntropyLoss(t.av_means, 2, reference);
  const at::Tensor g_ref = torch::autograd::grad({ref}, {x})[0];
  EXPECT_NEAR(fused.entropy, ref.item<double>(), 1e-9 * std::abs(ref.item<double>()));
  EXPECT_NE(fused.entropy, 0);
  ASSERT_GT(g_ref.abs().max().item<double>(), 0);
  EXPECT_LE((g_fused - g_ref).abs().max().item<double>(), 1e-9 * g_ref.abs().max().item<double>());
}

model::ModelConfig GrayClassifier() {
  model::ModelConfig c;
  c.arch = model::Arch::kSwin;
  c.swin.img_size = 28;
  c.swin.in_chans = 1;
  c.preprocess.mean = {0.25};
  c.preprocess.std = {0.5};
  return c;
}

TEST(ClassifierSamplesToDetectorTest, MapsPixelsChannelsAndSize) {
  const model::ModelConfig c = GrayClassifier();
  const detect::DetectorConfig d = detect::testing::TinyDetectorConfig();
  // A constant image stays constant under the resize: normalised 1.5 is pixel 1.0 for the
  // classifier, 255 in the detector's units.
  const at::Tensor out =
      ClassifierSamplesToDetector(at::full({2, 1, 28, 28}, 1.5, at::kDouble), c, d, 64, 96);
  ASSERT_EQ(out.sizes().vec(), (std::vector<int64_t>{2, 3, 64, 96}));
  for (int64_t k = 0; k < 3; ++k) {
    const double want = (255.0 - d.mean[static_cast<size_t>(k)]) / d.std[static_cast<size_t>(k)];
    EXPECT_NEAR(out.select(1, k).min().item<double>(), want, 1e-12);
    EXPECT_NEAR(out.select(1, k).max().item<double>(), want, 1e-12);
  }
  // A 2x upscale, bilinear with half-pixel centres: output pixel 1 of [0, 1] reads 0.25 of the
  // way from input 0 to input 1.
  at::Tensor ramp = at::zeros({1, 1, 2, 2}, at::kDouble);
  ramp.select(3, 1).fill_(1.5);  // normalised; pixels 0.25 and 1.0
  const at::Tensor up = ClassifierSamplesToDetector(ramp, c, d, 4, 4);
  const double p = 0.25 + 0.25 * (1.0 - 0.25);
  EXPECT_NEAR(up[0][0][0][1].item<double>(), (255.0 * p - d.mean[0]) / d.std[0], 1e-12);
}

TEST(ClassifierSamplesToDetectorTest, RejectsBadInput) {
  const model::ModelConfig c = GrayClassifier();
  detect::DetectorConfig d = detect::testing::TinyDetectorConfig();
  EXPECT_THROW(ClassifierSamplesToDetector(at::zeros({1, 3, 28, 28}), c, d, 64, 64), c10::Error);
  EXPECT_THROW(ClassifierSamplesToDetector(at::zeros({1, 1, 28, 28}), c, d, 0, 64), c10::Error);
  model::ModelConfig rgb = c;
  rgb.swin.in_chans = 3;
  rgb.preprocess.mean = {0.5, 0.5, 0.5};
  rgb.preprocess.std = {0.5, 0.5, 0.5};
  d.in_chans = 2;
  d.mean = {0, 0};
  d.std = {1, 1};
  EXPECT_THROW(ClassifierSamplesToDetector(at::zeros({1, 3, 28, 28}), rgb, d, 64, 64), c10::Error);
}

}  // namespace
}  // namespace psaq::gen
