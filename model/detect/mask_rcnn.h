// The Swin Mask R-CNN (mmdetection's MaskRCNN with a Swin backbone, configs/swin/
// mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py), float, test-time forward:
//   backbone (swin_backbone.h) -> neck (fpn.h) -> rpn_head (rpn_head.h) -> proposals
//   -> RoIAlign 7x7 (roi_extractor.h) -> roi_head.bbox_head (bbox_head.h) -> per-class boxes
//   -> RoIAlign 14x14 on the final boxes -> roi_head.mask_head (mask_head.h) -> pasted masks.
// The state dict holds exactly mmdetection's names (backbone.*, neck.*, rpn_head.*, roi_head.*;
// see each module and docs/detection.md), so a converted mmdetection checkpoint loads strictly
// (load_detector.h).
//
// Not a model::VisionModel (whose forward returns logits [B, num_classes]); it has the same tap
// conventions, so quant/ and gen/ observers see it the same way: a TapSet whose first tap is
// act "input" (the normalised image), weight taps named after their parameters, activation taps
// "<module path>.<point>", feature taps "<block path>.{av_mean,out}" for every backbone block
// (block_paths()). Taps in forward order: "input"; the backbone's (prefix "backbone"); the
// neck's ("neck"); the RPN head's ("rpn_head"); act "roi_head.bbox_roi_extractor.out"
// [R, F, 7, 7]; the box head's ("roi_head.bbox_head"); act "roi_head.mask_roi_extractor.out"
// [D, F, 14, 14]; the mask head's ("roi_head.mask_head").
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <memory>
#include <string>
#include <vector>

#include "model/detect/bbox_head.h"
#include "model/detect/detector_config.h"
#include "model/detect/fpn.h"
#include "model/detect/mask_head.h"
#include "model/detect/roi_extractor.h"
#include "model/detect/rpn_head.h"
#include "model/detect/swin_backbone.h"
#include "model/tap.h"

namespace psaq::detect {

// The final detections of one image, in the input image's pixel coordinates.
struct Detections {
  at::Tensor boxes;   // [N, 4] (x1, y1, x2, y2), clipped to [0, W] x [0, H]; N <= max_per_img
  at::Tensor scores;  // [N] softmax probabilities, descending
  at::Tensor labels;  // int64 [N], in [0, num_classes)
  at::Tensor masks;   // bool [N, H, W]
};

// Everything a forward computes, for the caller and for data-free generation (which takes its
// discrepancy on the FPN features, the RPN outputs and the box logits).
struct DetectorOutputs {
  std::vector<at::Tensor> backbone;   // per stage [B, C_i, H/(P·2^i), W/(P·2^i)], normalised
  std::vector<at::Tensor> fpn;        // num_outs levels [B, F, H_l, W_l]
  RpnOutputs rpn;                     // per level objectness [B, A, H_l, W_l], deltas [B, 4A, ..]
  std::vector<at::Tensor> proposals;  // per image [P_b, 4], P_b <= rpn_max_per_img
  std::vector<at::Tensor> proposal_scores;  // per image [P_b] (sigmoid objectness, descending)
  at::Tensor rois;         // [R, 5] (image index, x1, y1, x2, y2): the proposals of all images
  at::Tensor cls_score;    // [R, K+1] box-head logits (background last)
  at::Tensor bbox_pred;    // [R, 4K] box-head deltas
  at::Tensor mask_logits;  // [D, K, 2S, 2S] mask-head logits of the final boxes of all images
  std::vector<Detections> detections;  // per image
};

// How far a forward goes. Data-free generation compares teacher and student on the FPN levels
// and/or the RPN maps only, so it stops there instead of running proposals, heads and pasting.
enum class DetectorStage {
  kFpn,  // backbone and fpn
  kRpn,  // also rpn
  kAll,  // everything (forward)
};

// The RoI heads on given RoIs (MaskRcnn::HeadsOnRois).
struct RoiHeadOutputs {
  at::Tensor cls_score;    // [R, K+1] box-head logits
  at::Tensor mask_logits;  // [R, K, 2S, 2S] mask-head logits
};

class MaskRcnn : public torch::nn::Module {
 public:
  // A randomly initialised detector (mmdet-like init from the global torch RNG), float32, CPU.
  // Throws std::invalid_argument for an invalid config (ValidateDetectorConfig).
  explicit MaskRcnn(DetectorConfig config);

  // images: [B, in_chans, H, W] normalised, float32/float64, H and W multiples of
  // config().size_divisor(). Eval-mode semantics (mmdet's test_cfg) whatever is_training() says.
  // Throws c10::Error naming the expected shape otherwise.
  DetectorOutputs forward(const at::Tensor& images);
  // The first stages of forward only, bit for bit the same values: backbone and fpn (kFpn), also
  // rpn (kRpn); the other fields stay empty. kAll is forward. Same input contract.
  DetectorOutputs Features(const at::Tensor& images, DetectorStage until);
  // The box head and the mask head, both on `rois` [R, 5] (image index, x1, y1, x2, y2) over
  // `fpn` (Features' levels), through the same taps as forward: forward's cls_score for its own
  // rois; the mask head here sees these rois, not final detections. For data-free generation,
  // which compares teacher and student heads on the teacher's proposals.
  RoiHeadOutputs HeadsOnRois(const std::vector<at::Tensor>& fpn, const at::Tensor& rois);

  const DetectorConfig& config() const { return config_; }
  model::TapSet& taps() { return *taps_; }
  const model::TapSet& taps() const { return *taps_; }
  // "backbone.stages.<i>.blocks.<j>" in forward order.
  const std::vector<std::string>& block_paths() const { return backbone_->block_paths(); }

  SwinBackbone& backbone() { return backbone_; }
  Fpn& neck() { return neck_; }
  RpnHead& rpn_head() { return rpn_head_; }
  BBoxHead& bbox_head() { return bbox_head_; }
  MaskHead& mask_head() { return mask_head_; }

  // RPN proposals of image b of `rpn` for an input of height x width (mmdet's
  // RPNHead._predict_by_feat_single + _bbox_post_process): the top nms_pre anchors per level by
  // score, decoded, boxes not larger than rpn_min_bbox_size dropped, NMS over all levels at
  // rpn_nms_iou, the first max_per_img kept. forward passes test_cfg's rpn_nms_pre and
  // rpn_max_per_img; training passes train_cfg.rpn_proposal's (detector_loss.h).
  void Proposals(const RpnOutputs& rpn, int64_t b, int64_t height, int64_t width, int64_t nms_pre,
                 int64_t max_per_img, at::Tensor& boxes, at::Tensor& scores) const;

 private:

  DetectorConfig config_;
  std::shared_ptr<model::TapSet> taps_;
  SwinBackbone backbone_{nullptr};
  Fpn neck_{nullptr};
  RpnHead rpn_head_{nullptr};
  BBoxHead bbox_head_{nullptr};
  MaskHead mask_head_{nullptr};
  int input_tap_ = -1;
  int bbox_roi_tap_ = -1;
  int mask_roi_tap_ = -1;
};

using DetectorPtr = std::shared_ptr<MaskRcnn>;

// The RoI extractor of the box head (output_size = bbox_roi_size) or the mask head
// (mask_roi_size) of `config`.
RoiExtractorOptions RoiExtractorOptionsFor(const DetectorConfig& config, int output_size);

}  // namespace psaq::detect
