// MaxIoUAssigner and RandomSampler: hand-built cases for each rule of mmdet's assign_wrt_overlaps,
// a plain-loop reference on random boxes, and the sampler's counts, subsets and determinism.
#include "model/detect/assign.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "model/detect/box_ops.h"
#include "tests/testing/tensor_near.h"

namespace psaq::detect {
namespace {

at::Tensor Boxes(std::vector<double> values) {
  const int64_t n = static_cast<int64_t>(values.size()) / 4;
  return at::tensor(values, at::kDouble).view({n, 4});
}

at::Tensor Long(std::vector<int64_t> values) { return at::tensor(values, at::kLong); }

// gt0 = [0,0,10,10], gt1 = [20,0,30,10]; boxes: IoU 1 with gt0, 0.5 with gt0, 0 with both,
// 0.5 with gt1 twice (gt1's best overlap).
struct HandCase {
  at::Tensor gt = Boxes({0, 0, 10, 10, 20, 0, 30, 10});
  at::Tensor labels = Long({3, 7});
  at::Tensor boxes =
      Boxes({0, 0, 10, 10, 0, 0, 10, 5, 40, 40, 50, 50, 20, 0, 25, 10, 25, 0, 30, 10});
};

TEST(MaxIoUAssignTest, RpnRulesOnAHandCase) {
  const HandCase c;
  const AssignResult r = MaxIoUAssign(c.boxes, c.gt, c.labels, RpnAssignerOptions());
  EXPECT_EQ(r.num_gts, 2);
  // 1.0 -> positive; 0.5 -> ignored; 0 -> negative; 0.5 with gt1 = gt1's best -> low quality.
  EXPECT_TENSOR_IDENTICAL(r.gt_inds, Long({1, -1, 0, 2, 2}));
  EXPECT_TENSOR_IDENTICAL(r.labels, Long({3, -1, -1, 7, 7}));
  EXPECT_TENSOR_IDENTICAL(r.max_overlaps, at::tensor({1.0, 0.5, 0.0, 0.5, 0.5}, at::kDouble));
  MaxIoUAssignerOptions strict = RpnAssignerOptions();
  strict.match_low_quality = false;
  EXPECT_TENSOR_IDENTICAL(MaxIoUAssign(c.boxes, c.gt, c.labels, strict).gt_inds,
                          Long({1, -1, 0, -1, -1}));
  strict = RpnAssignerOptions();
  strict.gt_max_assign_all = false;  // only the first box with gt1's best overlap
  EXPECT_TENSOR_IDENTICAL(MaxIoUAssign(c.boxes, c.gt, c.labels, strict).gt_inds,
                          Long({1, -1, 0, 2, -1}));
  // Without labels there are none in the result.
  EXPECT_FALSE(MaxIoUAssign(c.boxes, c.gt, at::Tensor(), RpnAssignerOptions()).labels.defined());
}

TEST(MaxIoUAssignTest, RcnnThresholdsAreInclusiveForPositives) {
  const HandCase c;
  const AssignResult r = MaxIoUAssign(c.boxes, c.gt, c.labels, RcnnAssignerOptions());
  EXPECT_TENSOR_IDENTICAL(r.gt_inds, Long({1, 1, 0, 2, 2}));
  EXPECT_TENSOR_IDENTICAL(r.labels, Long({3, 3, -1, 7, 7}));
}

// mmdet's comment: a box with IoU 0.9 with gt0 and 0.8 with gt1 goes to gt1 when it is gt1's
// best box (low-quality matching overwrites step 3).
TEST(MaxIoUAssignTest, LowQualityMatchOverwritesTheBestGt) {
  const at::Tensor gt = Boxes({0, 0, 10, 10, 0, 0, 10, 7.2});
  const at::Tensor boxes = Boxes({0, 0, 10, 9});
  const at::Tensor iou = BoxIou(gt, boxes);
  EXPECT_NEAR(iou[0][0].item<double>(), 0.9, 1e-12);
  EXPECT_NEAR(iou[1][0].item<double>(), 0.8, 1e-12);
  const AssignResult r = MaxIoUAssign(boxes, gt, Long({1, 2}), RpnAssignerOptions());
  EXPECT_TENSOR_IDENTICAL(r.gt_inds, Long({2}));
  EXPECT_TENSOR_IDENTICAL(r.labels, Long({2}));
}

// The rules written as loops over plain numbers.
std::vector<int64_t> ReferenceAssign(const at::Tensor& boxes, const at::Tensor& gt,
                                     const MaxIoUAssignerOptions& o) {
  const at::Tensor iou = BoxIou(gt, boxes);
  auto v = iou.accessor<double, 2>();
  const int64_t g = iou.size(0), n = iou.size(1);
  std::vector<int64_t> inds(n, -1);
  for (int64_t j = 0; j < n; ++j) {
    int64_t best = 0;
    for (int64_t i = 1; i < g; ++i) {
      if (v[i][j] > v[best][j]) best = i;
    }
    if (v[best][j] < o.neg_iou_thr) inds[j] = 0;
    if (v[best][j] >= o.pos_iou_thr) inds[j] = best + 1;
  }
  for (int64_t i = 0; i < g; ++i) {
    double gt_best = 0;
    for (int64_t j = 0; j < n; ++j) gt_best = std::max(gt_best, v[i][j]);
    if (gt_best < o.min_pos_iou) continue;
    for (int64_t j = 0; j < n; ++j) {
      if (v[i][j] == gt_best) inds[j] = i + 1;
    }
  }
  return inds;
}

TEST(MaxIoUAssignTest, MatchesALoopReferenceOnRandomBoxes) {
  at::manual_seed(51);
  const at::Tensor xy = at::rand({300, 2}, at::kDouble) * 80;
  const at::Tensor boxes = at::cat({xy, xy + at::rand({300, 2}, at::kDouble) * 30 + 4}, 1);
  const at::Tensor gxy = at::rand({6, 2}, at::kDouble) * 80;
  const at::Tensor gt = at::cat({gxy, gxy + at::rand({6, 2}, at::kDouble) * 30 + 4}, 1);
  for (const MaxIoUAssignerOptions& o : {RpnAssignerOptions(), RcnnAssignerOptions()}) {
    const AssignResult r = MaxIoUAssign(boxes, gt, at::Tensor(), o);
    EXPECT_TENSOR_IDENTICAL(r.gt_inds, Long(ReferenceAssign(boxes, gt, o)));
    EXPECT_GT((r.gt_inds > 0).sum().item<int64_t>(), 0);
    EXPECT_GT((r.gt_inds == 0).sum().item<int64_t>(), 0);
  }
}

TEST(MaxIoUAssignTest, EmptyGroundTruthOrBoxes) {
  const HandCase c;
  const AssignResult none = MaxIoUAssign(c.boxes, at::zeros({0, 4}, at::kDouble),
                                         at::zeros({0}, at::kLong), RpnAssignerOptions());
  EXPECT_TENSOR_IDENTICAL(none.gt_inds, Long({0, 0, 0, 0, 0}));
  EXPECT_TENSOR_IDENTICAL(none.labels, Long({-1, -1, -1, -1, -1}));
  EXPECT_TENSOR_IDENTICAL(none.max_overlaps, at::zeros({5}, at::kDouble));
  const AssignResult empty =
      MaxIoUAssign(at::zeros({0, 4}, at::kDouble), c.gt, c.labels, RpnAssignerOptions());
  EXPECT_EQ(empty.gt_inds.numel(), 0);
}

TEST(MaxIoUAssignTest, AddGtAsProposalsPrependsTheGroundTruth) {
  const HandCase c;
  const AssignResult r =
      AddGtAsProposals(MaxIoUAssign(c.boxes, c.gt, c.labels, RcnnAssignerOptions()), c.labels);
  EXPECT_TENSOR_IDENTICAL(r.gt_inds, Long({1, 2, 1, 1, 0, 2, 2}));
  EXPECT_TENSOR_IDENTICAL(r.labels, Long({3, 7, 3, 3, -1, 7, 7}));
  EXPECT_TENSOR_IDENTICAL(r.max_overlaps,
                          at::tensor({1.0, 1.0, 1.0, 0.5, 0.0, 0.5, 0.5}, at::kDouble));
  EXPECT_THROW(AddGtAsProposals(r, Long({1})), c10::Error);
}

TEST(MaxIoUAssignTest, RejectsBadArguments) {
  const HandCase c;
  MaxIoUAssignerOptions bad = RpnAssignerOptions();
  bad.pos_iou_thr = 1.5;
  EXPECT_THROW(MaxIoUAssign(c.boxes, c.gt, c.labels, bad), c10::Error);
  EXPECT_THROW(MaxIoUAssign(c.boxes, c.gt, Long({1}), RpnAssignerOptions()), c10::Error);
  EXPECT_THROW(MaxIoUAssign(c.boxes, c.gt.to(at::kFloat), c.labels, RpnAssignerOptions()),
               c10::Error);
}

AssignResult ManyBoxes(int64_t pos, int64_t neg, int64_t ignored) {
  AssignResult r;
  r.num_gts = 3;
  r.gt_inds = at::cat({at::full({pos}, 2, at::kLong), at::zeros({neg}, at::kLong),
                       at::full({ignored}, -1, at::kLong)});
  r.gt_inds = r.gt_inds.index_select(0, at::randperm(pos + neg + ignored, at::kLong));
  return r;
}

TEST(RandomSampleTest, CountsSubsetsOrderAndDeterminism) {
  at::manual_seed(61);
  const AssignResult a = ManyBoxes(300, 2000, 100);
  const RandomSamplerOptions options;  // 256, 0.5
  at::Generator g1 = at::make_generator<at::CPUGeneratorImpl>(5);
  const SamplingResult s = RandomSample(a, options, g1);
  EXPECT_EQ(s.pos_inds.numel(), 128);
  EXPECT_EQ(s.neg_inds.numel(), 128);
  EXPECT_TRUE(a.gt_inds.index_select(0, s.pos_inds).gt(0).all().item<bool>());
  EXPECT_TRUE(a.gt_inds.index_select(0, s.neg_inds).eq(0).all().item<bool>());
  EXPECT_TENSOR_IDENTICAL(s.pos_inds, std::get<0>(at::_unique(s.pos_inds, /*sorted=*/true)));
  EXPECT_TENSOR_IDENTICAL(s.neg_inds, std::get<0>(at::_unique(s.neg_inds, /*sorted=*/true)));
  at::Generator g2 = at::make_generator<at::CPUGeneratorImpl>(5);
  const SamplingResult same = RandomSample(a, options, g2);
  EXPECT_TENSOR_IDENTICAL(same.pos_inds, s.pos_inds);
  EXPECT_TENSOR_IDENTICAL(same.neg_inds, s.neg_inds);
  at::Generator g3 = at::make_generator<at::CPUGeneratorImpl>(6);
  EXPECT_FALSE(RandomSample(a, options, g3).neg_inds.equal(s.neg_inds));
}

TEST(RandomSampleTest, NegativesFillUpWhenPositivesAreFew) {
  at::manual_seed(62);
  const AssignResult a = ManyBoxes(10, 1000, 5);
  RandomSamplerOptions options;
  options.num = 512;
  options.pos_fraction = 0.25;
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(1);
  const SamplingResult s = RandomSample(a, options, g);
  EXPECT_EQ(s.pos_inds.numel(), 10);  // all of them
  EXPECT_EQ(s.neg_inds.numel(), 502);
  options.neg_pos_ub = 3;  // at most 3 negatives per positive
  const SamplingResult bounded = RandomSample(a, options, g);
  EXPECT_EQ(bounded.neg_inds.numel(), 30);
  // Fewer negatives than wanted: all of them.
  const SamplingResult few = RandomSample(ManyBoxes(1, 20, 0), options, g);
  EXPECT_EQ(few.pos_inds.numel(), 1);
  EXPECT_EQ(few.neg_inds.numel(), 3);
  options.neg_pos_ub = -1;
  EXPECT_EQ(RandomSample(ManyBoxes(1, 20, 0), options, g).neg_inds.numel(), 20);
}

TEST(RandomSampleTest, RejectsBadOptions) {
  const AssignResult a = ManyBoxes(1, 1, 1);
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(1);
  RandomSamplerOptions options;
  options.num = -1;
  EXPECT_THROW(RandomSample(a, options, g), c10::Error);
  options = {};
  options.pos_fraction = 1.5;
  EXPECT_THROW(RandomSample(a, options, g), c10::Error);
  EXPECT_THROW(RandomSample(AssignResult{}, RandomSamplerOptions{}, g), c10::Error);
}

}  // namespace
}  // namespace psaq::detect
