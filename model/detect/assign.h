// Training targets of the RPN and the box head, as mmdetection 2.x: MaxIoUAssigner
// (mmdet/core/bbox/assigners/max_iou_assigner.py, assign_wrt_overlaps) and RandomSampler
// (mmdet/core/bbox/samplers/random_sampler.py with BaseSampler.sample).
//
// Assignment of N boxes (anchors or proposals) to G ground-truth boxes, with IoU = BoxIou(gt,
// boxes) [G, N] and, per box, its best IoU m and best gt (the first on ties):
//   1. every box starts "ignored" (-1);
//   2. 0 <= m < neg_iou_thr -> negative (0);
//   3. m >= pos_iou_thr -> positive, assigned its best gt (gt index + 1);
//   4. match_low_quality: for each gt i in order (later ones overwrite earlier), if its best IoU
//      over all boxes is >= min_pos_iou, every box with exactly that IoU with gt i
//      (gt_max_assign_all) is assigned gt i, whatever steps 2-3 said.
// No ground truth: every box is negative. Ignored regions (gt_bboxes_ignore) are not supported.
//
// Sampling: positives (gt_inds > 0) keep all when there are at most num * pos_fraction, else a
// random subset of that size; negatives (gt_inds == 0) fill up to num (bounded by
// neg_pos_ub * max(1, #pos) when neg_pos_ub >= 0), a random subset when there are more. Both
// index lists come back sorted ascending (mmdet's .unique()). The box head additionally prepends
// the ground truth to its proposals first (add_gt_as_proposals: AddGtAsProposals below).
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace psaq::detect {

struct MaxIoUAssignerOptions {
  double pos_iou_thr = 0.7;       // RPN 0.7; box head 0.5
  double neg_iou_thr = 0.3;       // RPN 0.3; box head 0.5
  double min_pos_iou = 0.3;       // RPN 0.3; box head 0.5 (low-quality matches)
  bool match_low_quality = true;  // both heads in mask_rcnn_swin_fpn
  bool gt_max_assign_all = true;  // mmdet's default
};

// mask_rcnn_swin_fpn's train_cfg.rpn.assigner and train_cfg.rcnn.assigner.
MaxIoUAssignerOptions RpnAssignerOptions();
MaxIoUAssignerOptions RcnnAssignerOptions();

struct AssignResult {
  int64_t num_gts = 0;
  at::Tensor gt_inds;       // int64 [N]: -1 ignored, 0 negative, i + 1 assigned to gt i
  at::Tensor max_overlaps;  // [N] best IoU with any gt (0 when there is no gt)
  at::Tensor labels;        // int64 [N]: gt label of positives, -1 otherwise; undefined when no
                            // gt_labels were given
};

// boxes [N, 4], gt_boxes [G, 4] (same float dtype/device), gt_labels int64 [G] or undefined.
// Throws (TORCH_CHECK) on bad shapes, dtypes, or thresholds outside [0, 1].
AssignResult MaxIoUAssign(const at::Tensor& boxes, const at::Tensor& gt_boxes,
                          const at::Tensor& gt_labels, const MaxIoUAssignerOptions& options);

// mmdet's AssignResult.add_gt_: for proposals at::cat({gt_boxes, proposals}), the G ground-truth
// boxes become positives of themselves (gt_inds 1..G, max_overlaps 1, labels gt_labels) ahead of
// `result`'s entries. gt_labels int64 [G]; requires result.labels defined when G > 0.
AssignResult AddGtAsProposals(const AssignResult& result, const at::Tensor& gt_labels);

struct RandomSamplerOptions {
  int64_t num = 256;          // RPN 256; box head 512
  double pos_fraction = 0.5;  // RPN 0.5; box head 0.25
  int64_t neg_pos_ub = -1;    // < 0: no bound on negatives per positive
};

struct SamplingResult {
  at::Tensor pos_inds;  // int64 [P] ascending indices of sampled positives
  at::Tensor neg_inds;  // int64 [Q] ascending indices of sampled negatives
};

// Samples from `assign` with `generator` (a CPU generator; the same state gives the same
// sample). Throws (TORCH_CHECK) on num < 0 or pos_fraction outside [0, 1].
SamplingResult RandomSample(const AssignResult& assign, const RandomSamplerOptions& options,
                            at::Generator generator);

}  // namespace psaq::detect
