// Training targets of the RPN, as mmdetection 2.x's AnchorHead.get_targets / _get_targets_single
// (mmdet/models/dense_heads/anchor_head.py) with mask_rcnn_r50_fpn's train_cfg.rpn:
//   anchors: every anchor of every level (allowed_border = -1 in that config, so no
//            inside-the-image test), minus those of feature cells beyond the image's own size in
//            a padded batch (AnchorGenerator.valid_flags: cells y < ceil(h / stride),
//            x < ceil(w / stride) are valid);
//   assign:  MaxIoUAssign with RpnAssignerOptions (pos 0.7, neg 0.3, min_pos 0.3, low-quality
//            matches), on the valid anchors;
//   sample:  RandomSample, 256 anchors, pos_fraction 0.5, no neg_pos_ub, no gt as proposals;
//   targets: label 1 (foreground) for sampled positives, 0 for sampled negatives; label weight 1
//            on sampled anchors, 0 elsewhere; delta targets DeltaXYWHBBoxCoder(rpn_target_stds)
//            .Encode(anchor, its gt) with weight 1 on sampled positives, 0 elsewhere.
// The loss normaliser of the batch is the sum over images of max(#pos, 1) + max(#neg, 1) (mmdet
// 2.x's num_total_samples): RpnTargets::avg_factor, summed over images by the caller.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "model/detect/assign.h"

namespace psaq::detect {

struct RpnTargets {
  at::Tensor labels;         // float [N]: 1 sampled positive, 0 otherwise
  at::Tensor label_weights;  // float [N]: 1 sampled (positive or negative), 0 otherwise
  at::Tensor delta_targets;  // float [N, 4]: encoded gt of sampled positives, 0 otherwise
  at::Tensor delta_weights;  // float [N]: 1 sampled positive, 0 otherwise
  int64_t num_pos = 0;       // sampled positives
  int64_t num_neg = 0;       // sampled negatives
  // max(num_pos, 1) + max(num_neg, 1): this image's share of the loss normaliser.
  double avg_factor() const;
};

// Valid flags [N] (bool) of the anchors of levels of feature sizes `feat_sizes` (anchors in
// AnchorGenerator::GridAnchors order, levels concatenated, `num_base_anchors` per cell), for an
// image of height x width inside a padded input: the cell (y, x) of level l with stride s_l is
// valid when y < min(ceil(height / s_l), H_l) and x < min(ceil(width / s_l), W_l).
at::Tensor AnchorValidFlags(const std::vector<std::pair<int64_t, int64_t>>& feat_sizes,
                            const std::vector<int64_t>& strides, int64_t num_base_anchors,
                            int64_t height, int64_t width);

// anchors [N, 4] float32 (all levels), valid bool [N], gt_boxes float32 [G, 4] (G may be 0),
// target_stds of the RPN's coder. Samples with `generator`; the same state gives the same targets.
// Throws (TORCH_CHECK) on mismatched shapes.
RpnTargets ComputeRpnTargets(const at::Tensor& anchors, const at::Tensor& valid,
                             const at::Tensor& gt_boxes, const std::vector<double>& target_stds,
                             const MaxIoUAssignerOptions& assigner,
                             const RandomSamplerOptions& sampler, at::Generator generator);

}  // namespace psaq::detect
