// MaskRcnn's test-time forward: proposals, box post-processing and mask pasting (mmdetection's
// RPNHead.predict_by_feat, StandardRoIHead.predict_bbox / predict_mask).
#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <array>
#include <tuple>
#include <utility>
#include <vector>

#include "model/detect/anchors.h"
#include "model/detect/box_coder.h"
#include "model/detect/box_ops.h"
#include "model/detect/mask_rcnn.h"
#include "model/detect/nms.h"
#include "model/detect/paste_masks.h"
#include "model/detect/roi_extractor.h"

namespace psaq::detect {

namespace {

std::array<double, 4> Stds(const std::vector<double>& v) { return {v[0], v[1], v[2], v[3]}; }

}  // namespace

RoiExtractorOptions RoiExtractorOptionsFor(const DetectorConfig& c, int output_size) {
  RoiExtractorOptions o;
  o.output_size = output_size;
  o.sampling_ratio = c.sampling_ratio;
  o.strides.assign(c.roi_strides.begin(), c.roi_strides.end());
  o.finest_scale = c.finest_scale;
  return o;
}

void MaskRcnn::Proposals(const RpnOutputs& rpn, int64_t b, int64_t height, int64_t width,
                         int64_t nms_pre, int64_t max_per_img, at::Tensor& boxes,
                         at::Tensor& scores) const {
  AnchorGeneratorOptions anchor_options;
  anchor_options.strides.assign(config_.anchor_strides.begin(), config_.anchor_strides.end());
  anchor_options.scales = config_.anchor_scales;
  anchor_options.ratios = config_.anchor_ratios;
  const AnchorGenerator anchors(anchor_options);
  std::vector<at::Tensor> level_scores, level_deltas, level_anchors, level_ids;
  for (size_t l = 0; l < rpn.cls.size(); ++l) {
    // [A, H, W] -> [H, W, A] flattened: index (y·W + x)·A + a, the anchors' order.
    const at::Tensor cls = rpn.cls[l][b];
    at::Tensor s = cls.permute({1, 2, 0}).reshape({-1}).sigmoid();
    at::Tensor d = rpn.reg[l][b].permute({1, 2, 0}).reshape({-1, 4});
    at::Tensor a =
        anchors.GridAnchors(static_cast<int64_t>(l), cls.size(1), cls.size(2), cls.device())
            .to(d.scalar_type());
    if (nms_pre < s.size(0)) {  // top nms_pre by score, as mmdet (sort, descending)
      auto [sorted, order] = at::sort(s, 0, /*descending=*/true);
      const at::Tensor top = order.slice(0, 0, nms_pre);
      s = sorted.slice(0, 0, nms_pre);
      d = d.index_select(0, top);
      a = a.index_select(0, top);
    }
    level_ids.push_back(
        at::full({s.size(0)}, static_cast<int64_t>(l), s.options().dtype(at::kLong)));
    level_scores.push_back(s);
    level_deltas.push_back(d);
    level_anchors.push_back(a);
  }
  scores = at::cat(level_scores);
  at::Tensor ids = at::cat(level_ids);
  DeltaXYWHBBoxCoderOptions coder_options;
  coder_options.target_stds = Stds(config_.rpn_target_stds);
  boxes = DeltaXYWHBBoxCoder(coder_options)
              .Decode(at::cat(level_anchors), at::cat(level_deltas), std::make_pair(height, width));
  // mmdet's _bbox_post_process: drop boxes not wider/taller than min_bbox_size, NMS per level.
  const at::Tensor valid = NonSmallBoxMask(boxes, config_.rpn_min_bbox_size);
  if (!valid.all().item<bool>()) {
    const at::Tensor keep = valid.nonzero().squeeze(1);
    boxes = boxes.index_select(0, keep);
    scores = scores.index_select(0, keep);
    ids = ids.index_select(0, keep);
  }
  if (boxes.size(0) == 0) return;
  at::Tensor keep = BatchedNms(boxes, scores, ids, config_.rpn_nms_iou);
  keep = keep.slice(0, 0, max_per_img);
  boxes = boxes.index_select(0, keep);
  scores = scores.index_select(0, keep);
}

DetectorOutputs MaskRcnn::Features(const at::Tensor& input, DetectorStage until) {
  if (until == DetectorStage::kAll) return forward(input);
  const int64_t d = config_.size_divisor();
  TORCH_CHECK(input.dim() == 4 && input.size(1) == config_.in_chans && input.size(2) > 0 &&
                  input.size(3) > 0 && input.size(2) % d == 0 && input.size(3) % d == 0,
              "MaskRcnn: expected images [B, ", config_.in_chans,
              ", H, W] with H and W positive multiples of ", d, ", got ", input.sizes());
  DetectorOutputs out;
  out.backbone = backbone_->forward(taps_->Apply(input_tap_, input)).features;
  out.fpn = neck_->forward(out.backbone);
  if (until == DetectorStage::kRpn) out.rpn = rpn_head_->forward(out.fpn);
  return out;
}

RoiHeadOutputs MaskRcnn::HeadsOnRois(const std::vector<at::Tensor>& fpn, const at::Tensor& rois) {
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5, "MaskRcnn::HeadsOnRois: rois must be [R, 5], got ",
              rois.sizes());
  RoiHeadOutputs out;
  at::Tensor feats =
      ExtractRoiFeatures(fpn, rois, RoiExtractorOptionsFor(config_, config_.bbox_roi_size));
  out.cls_score = bbox_head_->forward(taps_->Apply(bbox_roi_tap_, feats)).first;
  feats = ExtractRoiFeatures(fpn, rois, RoiExtractorOptionsFor(config_, config_.mask_roi_size));
  out.mask_logits = mask_head_->forward(taps_->Apply(mask_roi_tap_, feats));
  return out;
}

DetectorOutputs MaskRcnn::forward(const at::Tensor& input) {
  DetectorOutputs out = Features(input, DetectorStage::kRpn);  // checks the input
  const int64_t B = input.size(0), H = input.size(2), W = input.size(3);
  const int64_t K = config_.num_classes;

  // Proposals per image, then the RoIs of all images (mmdet's bbox2roi).
  std::vector<at::Tensor> rois;
  for (int64_t b = 0; b < B; ++b) {
    at::Tensor boxes, scores;
    Proposals(out.rpn, b, H, W, config_.rpn_nms_pre, config_.rpn_max_per_img, boxes, scores);
    out.proposals.push_back(boxes);
    out.proposal_scores.push_back(scores);
    rois.push_back(
        at::cat({at::full({boxes.size(0), 1}, static_cast<double>(b), boxes.options()), boxes}, 1));
  }
  out.rois = at::cat(rois);

  // Box head on 7x7 RoI features of the first len(roi_strides) FPN levels.
  at::Tensor roi_feats =
      ExtractRoiFeatures(out.fpn, out.rois, RoiExtractorOptionsFor(config_, config_.bbox_roi_size));
  roi_feats = taps_->Apply(bbox_roi_tap_, roi_feats);
  std::tie(out.cls_score, out.bbox_pred) = bbox_head_->forward(roi_feats);

  DeltaXYWHBBoxCoderOptions coder_options;
  coder_options.target_stds = Stds(config_.rcnn_target_stds);
  const DeltaXYWHBBoxCoder coder(coder_options);
  std::vector<at::Tensor> mask_rois;
  int64_t start = 0;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = out.proposals[static_cast<size_t>(b)].size(0);
    const at::Tensor cls = out.cls_score.slice(0, start, start + n);
    const at::Tensor reg = out.bbox_pred.slice(0, start, start + n);
    const at::Tensor props = out.proposals[static_cast<size_t>(b)];
    start += n;
    // mmdet's BBoxHead._predict_by_feat_single + multiclass_nms (no rescale: input pixels).
    const at::Tensor probs = at::softmax(cls, -1);
    const at::Tensor boxes = coder.Decode(props, reg, std::make_pair(H, W));  // [n, 4K]
    at::Tensor all_boxes = boxes.reshape({-1, 4});                            // (roi, class)
    at::Tensor all_scores = probs.slice(1, 0, K).reshape({-1});               // background dropped
    at::Tensor all_labels = at::arange(K, probs.options().dtype(at::kLong)).repeat({n});
    const at::Tensor valid = (all_scores > config_.score_thr).nonzero().squeeze(1);
    all_boxes = all_boxes.index_select(0, valid);
    all_scores = all_scores.index_select(0, valid);
    all_labels = all_labels.index_select(0, valid);
    Detections det;
    at::Tensor keep = BatchedNms(all_boxes, all_scores, all_labels, config_.rcnn_nms_iou)
                          .slice(0, 0, config_.max_per_img);
    det.boxes = all_boxes.index_select(0, keep);
    det.scores = all_scores.index_select(0, keep);
    det.labels = all_labels.index_select(0, keep);
    mask_rois.push_back(at::cat(
        {at::full({det.boxes.size(0), 1}, static_cast<double>(b), det.boxes.options()), det.boxes},
        1));
    out.detections.push_back(std::move(det));
  }

  // Mask head on 14x14 RoI features of the final boxes, then pasting (FCNMaskHead.predict).
  const at::Tensor mrois = at::cat(mask_rois);
  at::Tensor mask_feats =
      ExtractRoiFeatures(out.fpn, mrois, RoiExtractorOptionsFor(config_, config_.mask_roi_size));
  mask_feats = taps_->Apply(mask_roi_tap_, mask_feats);
  out.mask_logits = mask_head_->forward(mask_feats);  // [D, K, 2S, 2S]
  PasteMasksOptions paste;
  paste.threshold = config_.mask_thr;
  // mmdet pastes per box with skip_empty on the CPU and over the whole image on a GPU.
  paste.skip_empty = input.device().is_cpu();
  start = 0;
  for (Detections& det : out.detections) {
    const int64_t n = det.boxes.size(0);
    const at::Tensor logits = out.mask_logits.slice(0, start, start + n);
    start += n;
    // The label's channel of each box, sigmoid.
    const at::Tensor probs =
        logits
            .gather(1,
                    det.labels.view({-1, 1, 1, 1}).expand({n, 1, logits.size(2), logits.size(3)}))
            .squeeze(1)
            .sigmoid();
    det.masks = n == 0 ? at::zeros({0, H, W}, input.options().dtype(at::kBool))
                       : PasteMasks(probs, det.boxes, H, W, paste);
  }
  return out;
}

}  // namespace psaq::detect
