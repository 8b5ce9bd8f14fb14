// The training losses of the Swin Mask R-CNN (mmdetection 2.x's TwoStageDetector.forward_train
// with mask_rcnn_r50_fpn's train_cfg, every loss weight 1):
//   rpn_cls    sigmoid BCE of the objectness of the sampled anchors (rpn_targets.h)
//   rpn_bbox   L1 of the deltas of the sampled positive anchors (targets / rpn_target_stds)
//              -- both divided by the batch's sum of max(#pos, 1) + max(#neg, 1) per image;
//   rcnn_cls   cross-entropy over K + 1 classes (background last) of the sampled RoIs
//              (roi_targets.h), divided by the number of sampled RoIs (at least 1);
//   rcnn_bbox  L1 of the class-specific deltas (the gt label's 4 of the 4K) of the positive RoIs
//              (targets / rcnn_target_stds), divided by the number of sampled RoIs;
//   mask       BCE with logits of the gt label's channel of the mask head on the positive RoIs
//              (RoIAlign mask_roi_size of their boxes) against mask_targets.h's targets of size
//              2 * mask_roi_size, the mean over positives and pixels.
// The RoIs come from the RPN's detached outputs: MaskRcnn::Proposals with
// DetectorTrainConfig's nms_pre / max_per_img (rpn_nms_iou and rpn_min_bbox_size as the test
// config: mmdet's rpn_proposal uses 0.7 and 0 as its test_cfg does).
//
// Each loss is returned as a sum and its normaliser (LossTerm) so that a data-parallel trainer
// can normalise by the counts of the whole global batch (sum the counts over ranks, then
// divide): the gradient is then exactly that of one process on the whole batch.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "model/detect/assign.h"
#include "model/detect/mask_rcnn.h"

namespace psaq::detect {

// mask_rcnn_r50_fpn's train_cfg (not in the weights' metadata: it does not change inference).
struct DetectorTrainConfig {
  MaxIoUAssignerOptions rpn_assigner = RpnAssignerOptions();
  RandomSamplerOptions rpn_sampler = {256, 0.5, -1};
  int64_t rpn_proposal_nms_pre = 2000;  // per level
  int64_t rpn_proposal_max_per_img = 1000;
  MaxIoUAssignerOptions rcnn_assigner = RcnnAssignerOptions();
  RandomSamplerOptions rcnn_sampler = {512, 0.25, -1};
};

// One image's ground truth, in the input's pixel coordinates (crowd annotations left out, as
// mmdet does when no ignore regions are used).
struct DetectionGroundTruth {
  at::Tensor boxes;   // float [G, 4] x1, y1, x2, y2
  at::Tensor labels;  // int64 [G] in [0, num_classes)
  at::Tensor masks;   // bool [G, h, w]: the image's own size (h <= H, w <= W of the input)
};

// A loss as sum / count; the count is what mmdet divides by.
struct LossTerm {
  at::Tensor sum;    // scalar, differentiable
  double count = 0;  // >= 0
};

struct DetectorLosses {
  static constexpr int kNumTerms = 5;
  // "rpn_cls", "rpn_bbox", "rcnn_cls", "rcnn_bbox", "mask".
  static const std::array<const char*, kNumTerms>& Names();
  std::array<LossTerm, kNumTerms> terms;
  // Each term's count.
  std::array<double, kNumTerms> Counts() const;
  // sum_i terms[i].sum / max(counts[i], 1) (counts: the global batch's, or Counts()).
  at::Tensor Total(const std::array<double, kNumTerms>& counts) const;
  at::Tensor Total() const { return Total(Counts()); }
};

// The losses of `model` on `images` [B, in_chans, H, W] (normalised, H and W multiples of the
// size divisor, each image at the top-left of its padded slot), gt[b] the ground truth of image
// b and image_sizes[b] its unpadded (height, width); generators[b] samples image b's anchors and
// RoIs (the same generator states give the same losses, whatever else is in the batch).
// Runs in whatever train/eval mode the model is in; gradients flow to every parameter.
// Throws (TORCH_CHECK) on mismatched sizes.
DetectorLosses MaskRcnnLosses(MaskRcnn& model, const at::Tensor& images,
                              const std::vector<DetectionGroundTruth>& gt,
                              const std::vector<std::pair<int64_t, int64_t>>& image_sizes,
                              std::vector<at::Generator>& generators,
                              const DetectorTrainConfig& train_config = {});

}  // namespace psaq::detect
