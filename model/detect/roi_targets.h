// Training targets of the box head, as mmdetection 2.x's StandardRoIHead.forward_train (assign +
// sample per image) and BBoxHead.get_targets / _get_target_single with mask_rcnn_r50_fpn's
// train_cfg.rcnn:
//   the ground truth is prepended to the proposals (add_gt_as_proposals, AddGtAsProposals);
//   assign: MaxIoUAssign with RcnnAssignerOptions (0.5 / 0.5 / min_pos 0.5, low-quality matches);
//   sample: RandomSample, 512 RoIs, pos_fraction 0.25, no neg_pos_ub;
//   the sampled RoIs are the positives followed by the negatives (SamplingResult.bboxes);
//   labels: the gt label of a positive, num_classes (background, last) for a negative; label
//   weight 1 on every sampled RoI; delta targets DeltaXYWHBBoxCoder(rcnn_target_stds)
//   .Encode(RoI, its gt) for positives (weight 1), zeros for negatives (weight 0).
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "model/detect/assign.h"

namespace psaq::detect {

struct RoiTargets {
  at::Tensor boxes;          // [S, 4] sampled RoIs: num_pos positives, then the negatives
  at::Tensor labels;         // int64 [S]: gt label (positives), num_classes (negatives)
  at::Tensor delta_targets;  // [S, 4]: encoded gt of positives, zeros for negatives
  at::Tensor pos_gt_inds;    // int64 [num_pos]: the gt index of each positive
  int64_t num_pos = 0;
};

// proposals [P, 4] (detached), gt_boxes [G, 4], gt_labels int64 [G] in [0, num_classes), same
// float dtype. Samples with `generator`. Throws (TORCH_CHECK) on bad shapes or labels.
RoiTargets ComputeRoiTargets(const at::Tensor& proposals, const at::Tensor& gt_boxes,
                             const at::Tensor& gt_labels, int64_t num_classes,
                             const std::vector<double>& target_stds,
                             const MaxIoUAssignerOptions& assigner,
                             const RandomSamplerOptions& sampler, at::Generator generator);

}  // namespace psaq::detect
