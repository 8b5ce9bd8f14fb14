// NMS and batched NMS: the fallback against torchvision's operator (random boxes, tied scores,
// empty input) and hand-checked cases. torchvision's library is required (CI installs
// python3-torchvision): without it the comparisons fail.
#include "model/detect/nms.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "model/detect/torchvision_ops.h"
#include "tests/testing/tensor_near.h"

namespace psaq::detect {
namespace {

#define ASSERT_TORCHVISION()                                            \
  ASSERT_TRUE(TorchvisionOpsAvailable())                                \
      << "torchvision operators needed (install python3-torchvision): " \
      << LoadTorchvisionOps().reason

// n clustered boxes (so that many overlap) in a 100 x 100 image.
at::Tensor RandomBoxes(int64_t n, at::ScalarType dtype) {
  const at::Tensor centre = at::rand({n, 2}, at::kDouble) * 60 + 20;
  const at::Tensor size = at::rand({n, 2}, at::kDouble) * 30 + 2;
  return at::cat({centre - size / 2, centre + size / 2}, 1).to(dtype);
}

TEST(NmsTest, AtenMatchesTorchvisionOnRandomBoxes) {
  ASSERT_TORCHVISION();
  at::manual_seed(11);
  for (at::ScalarType dtype : {at::kFloat, at::kDouble}) {
    for (double threshold : {0.0, 0.3, 0.5, 0.7, 1.0}) {
      SCOPED_TRACE(threshold);
      const at::Tensor boxes = RandomBoxes(300, dtype);
      const at::Tensor scores = at::rand({300}, dtype);
      const at::Tensor expected = Nms(boxes, scores, threshold, OpsBackend::kTorchvision);
      EXPECT_TENSOR_IDENTICAL(Nms(boxes, scores, threshold, OpsBackend::kAten), expected);
      EXPECT_GT(expected.numel(), 0);
      if (threshold < 1.0) {
        EXPECT_LT(expected.numel(), 300);
      } else {
        EXPECT_EQ(expected.numel(), 300);  // IoU > 1 never holds
      }
    }
  }
}

TEST(NmsTest, AtenBreaksTiesAsTorchvision) {
  ASSERT_TORCHVISION();
  at::manual_seed(12);
  // Scores on 5 levels: many ties; plus exact duplicate boxes with equal scores.
  at::Tensor boxes = RandomBoxes(200, at::kFloat);
  boxes.slice(0, 100, 150).copy_(boxes.slice(0, 0, 50));
  const at::Tensor scores = at::randint(5, {200}, at::kFloat) / 4;
  for (double threshold : {0.3, 0.5, 0.9}) {
    const at::Tensor expected = Nms(boxes, scores, threshold, OpsBackend::kTorchvision);
    EXPECT_TENSOR_IDENTICAL(Nms(boxes, scores, threshold, OpsBackend::kAten), expected);
  }
  // All scores equal.
  const at::Tensor flat = at::full({200}, 0.5f);
  EXPECT_TENSOR_IDENTICAL(Nms(boxes, flat, 0.5, OpsBackend::kAten),
                          Nms(boxes, flat, 0.5, OpsBackend::kTorchvision));
}

TEST(NmsTest, EmptyInputGivesEmptyInt64) {
  ASSERT_TORCHVISION();
  const at::Tensor boxes = at::zeros({0, 4});
  const at::Tensor scores = at::zeros({0});
  for (OpsBackend backend : {OpsBackend::kAten, OpsBackend::kTorchvision, OpsBackend::kAuto}) {
    const at::Tensor keep = Nms(boxes, scores, 0.5, backend);
    EXPECT_EQ(keep.numel(), 0);
    EXPECT_EQ(keep.scalar_type(), at::kLong);
    const at::Tensor batched = BatchedNms(boxes, scores, at::zeros({0}, at::kLong), 0.5, backend);
    EXPECT_EQ(batched.numel(), 0);
    EXPECT_EQ(batched.scalar_type(), at::kLong);
  }
}

// IoU exactly at the threshold is kept (suppression needs IoU > threshold).
TEST(NmsTest, SuppressesOnlyAboveTheThreshold) {
  // Box 1 overlaps box 0 by half its width: IoU = 50 / 150 = 1/3. Box 2 is disjoint.
  const at::Tensor boxes =
      at::tensor({0.0, 0.0, 10.0, 10.0, 5.0, 0.0, 15.0, 10.0, 20.0, 0.0, 30.0, 10.0}, at::kDouble)
          .view({3, 4});
  const at::Tensor scores = at::tensor({0.9, 0.8, 0.7}, at::kDouble);
  for (OpsBackend backend : {OpsBackend::kAten, OpsBackend::kAuto}) {
    EXPECT_EQ(Nms(boxes, scores, 1.0 / 3.0 - 1e-9, backend).numel(), 2);
    EXPECT_EQ(Nms(boxes, scores, 1.0 / 3.0 + 1e-9, backend).numel(), 3);
  }
  const at::Tensor keep = Nms(boxes, scores, 0.3, OpsBackend::kAten);
  ASSERT_EQ(keep.numel(), 2);
  EXPECT_EQ(keep[0].item<int64_t>(), 0);
  EXPECT_EQ(keep[1].item<int64_t>(), 2);
}

TEST(BatchedNmsTest, MatchesTorchvisionAndPerClassNms) {
  ASSERT_TORCHVISION();
  at::manual_seed(13);
  const int64_t n = 400;
  const at::Tensor boxes = RandomBoxes(n, at::kFloat);
  const at::Tensor scores = at::rand({n});
  const at::Tensor idxs = at::randint(5, {n}, at::kLong);
  const double threshold = 0.5;
  const at::Tensor keep_tv = BatchedNms(boxes, scores, idxs, threshold, OpsBackend::kTorchvision);
  const at::Tensor keep_at = BatchedNms(boxes, scores, idxs, threshold, OpsBackend::kAten);
  EXPECT_TENSOR_IDENTICAL(keep_at, keep_tv);
  // Kept in decreasing score order.
  const at::Tensor kept_scores = scores.index_select(0, keep_at);
  EXPECT_TRUE(kept_scores.slice(0, 0, -1).ge(kept_scores.slice(0, 1)).all().item<bool>());
  // The same set as NMS run separately on each class (torchvision's _batched_nms_vanilla).
  std::set<int64_t> per_class;
  for (int64_t c = 0; c < 5; ++c) {
    const at::Tensor members = (idxs == c).nonzero().view({-1});
    const at::Tensor keep = Nms(boxes.index_select(0, members), scores.index_select(0, members),
                                threshold, OpsBackend::kTorchvision);
    const at::Tensor global = members.index_select(0, keep);
    for (int64_t i = 0; i < global.numel(); ++i) per_class.insert(global[i].item<int64_t>());
  }
  std::set<int64_t> batched;
  for (int64_t i = 0; i < keep_at.numel(); ++i) batched.insert(keep_at[i].item<int64_t>());
  EXPECT_EQ(batched, per_class);
  // Classes matter: plain NMS over all boxes keeps fewer.
  EXPECT_LT(Nms(boxes, scores, threshold, OpsBackend::kAten).numel(), keep_at.numel());
}

TEST(BatchedNmsTest, IdenticalBoxesOfDifferentClassesAreBothKept) {
  const at::Tensor boxes = at::tensor({1.f, 1.f, 5.f, 5.f, 1.f, 1.f, 5.f, 5.f}).view({2, 4});
  const at::Tensor scores = at::tensor({0.4f, 0.6f});
  const at::Tensor keep =
      BatchedNms(boxes, scores, at::tensor({0, 1}, at::kLong), 0.5, OpsBackend::kAten);
  ASSERT_EQ(keep.numel(), 2);
  EXPECT_EQ(keep[0].item<int64_t>(), 1);
  EXPECT_EQ(
      BatchedNms(boxes, scores, at::tensor({2, 2}, at::kLong), 0.5, OpsBackend::kAten).numel(), 1);
}

TEST(NmsTest, RejectsBadArguments) {
  const at::Tensor boxes = at::rand({3, 4});
  const at::Tensor scores = at::rand({3});
  for (OpsBackend backend : {OpsBackend::kAten, OpsBackend::kAuto}) {
    EXPECT_THROW(Nms(boxes.narrow(1, 0, 3), scores, 0.5, backend), c10::Error);
    EXPECT_THROW(Nms(boxes, scores.narrow(0, 0, 2), 0.5, backend), c10::Error);
    EXPECT_THROW(Nms(boxes, scores.to(at::kDouble), 0.5, backend), c10::Error);
    EXPECT_THROW(Nms(boxes.to(at::kInt), scores.to(at::kInt), 0.5, backend), c10::Error);
    EXPECT_THROW(BatchedNms(boxes, scores, at::zeros({2}, at::kLong), 0.5, backend), c10::Error);
    EXPECT_THROW(BatchedNms(boxes, scores, at::zeros({3}), 0.5, backend), c10::Error);
    EXPECT_THROW(BatchedNms(boxes, scores, at::full({3}, -1, at::kLong), 0.5, backend), c10::Error);
  }
}

}  // namespace
}  // namespace psaq::detect
