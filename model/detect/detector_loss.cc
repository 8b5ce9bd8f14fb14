#include "model/detect/detector_loss.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <utility>

#include "model/detect/anchors.h"
#include "model/detect/mask_targets.h"
#include "model/detect/roi_extractor.h"
#include "model/detect/roi_targets.h"
#include "model/detect/rpn_targets.h"

namespace psaq::detect {

const std::array<const char*, DetectorLosses::kNumTerms>& DetectorLosses::Names() {
  static const std::array<const char*, kNumTerms> names = {"rpn_cls", "rpn_bbox", "rcnn_cls",
                                                           "rcnn_bbox", "mask"};
  return names;
}

std::array<double, DetectorLosses::kNumTerms> DetectorLosses::Counts() const {
  std::array<double, kNumTerms> c{};
  for (int i = 0; i < kNumTerms; ++i) c[i] = terms[i].count;
  return c;
}

at::Tensor DetectorLosses::Total(const std::array<double, kNumTerms>& counts) const {
  at::Tensor total = terms[0].sum / std::max(counts[0], 1.0);
  for (int i = 1; i < kNumTerms; ++i) total = total + terms[i].sum / std::max(counts[i], 1.0);
  return total;
}

DetectorLosses MaskRcnnLosses(MaskRcnn& model, const at::Tensor& images,
                              const std::vector<DetectionGroundTruth>& gt,
                              const std::vector<std::pair<int64_t, int64_t>>& image_sizes,
                              std::vector<at::Generator>& generators,
                              const DetectorTrainConfig& train_config) {
  const DetectorConfig& config = model.config();
  const int64_t d = config.size_divisor();
  TORCH_CHECK(images.dim() == 4 && images.size(1) == config.in_chans && images.size(2) % d == 0 &&
                  images.size(3) % d == 0,
              "MaskRcnnLosses: expected images [B, ", config.in_chans,
              ", H, W] with H and W multiples of ", d, ", got ", images.sizes());
  const int64_t B = images.size(0), H = images.size(2), W = images.size(3);
  const int64_t K = config.num_classes;
  TORCH_CHECK(static_cast<int64_t>(gt.size()) == B &&
                  static_cast<int64_t>(image_sizes.size()) == B &&
                  static_cast<int64_t>(generators.size()) == B,
              "MaskRcnnLosses: one ground truth, image size and generator per image expected");
  for (const auto& [h, w] : image_sizes) {
    TORCH_CHECK(h >= 1 && w >= 1 && h <= H && w <= W, "MaskRcnnLosses: image size ", h, "x", w,
                " outside the input's ", H, "x", W);
  }
  const auto opts = images.options();

  const std::vector<at::Tensor> feats = model.neck()->forward(model.backbone()->forward(images).features);
  const RpnOutputs rpn = model.rpn_head()->forward(feats);

  // RPN targets and losses over all levels, anchors in the heads' output order.
  AnchorGeneratorOptions anchor_options;
  anchor_options.strides.assign(config.anchor_strides.begin(), config.anchor_strides.end());
  anchor_options.scales = config.anchor_scales;
  anchor_options.ratios = config.anchor_ratios;
  const AnchorGenerator generator(anchor_options);
  std::vector<std::pair<int64_t, int64_t>> feat_sizes;
  std::vector<at::Tensor> cls_levels, reg_levels;
  for (const at::Tensor& c : rpn.cls) feat_sizes.emplace_back(c.size(2), c.size(3));
  for (size_t l = 0; l < rpn.cls.size(); ++l) {
    cls_levels.push_back(rpn.cls[l].permute({0, 2, 3, 1}).reshape({B, -1}));
    reg_levels.push_back(rpn.reg[l].permute({0, 2, 3, 1}).reshape({B, -1, 4}));
  }
  const at::Tensor rpn_cls = at::cat(cls_levels, 1);  // [B, N]
  const at::Tensor rpn_reg = at::cat(reg_levels, 1);  // [B, N, 4]
  const at::Tensor anchors = at::cat(generator.GridAnchors(feat_sizes)).to(opts.dtype());

  DetectorLosses losses;
  at::Tensor rpn_cls_sum = at::zeros({}, opts), rpn_reg_sum = at::zeros({}, opts);
  double rpn_count = 0;
  for (int64_t b = 0; b < B; ++b) {
    const DetectionGroundTruth& g = gt[static_cast<size_t>(b)];
    const auto [h, w] = image_sizes[static_cast<size_t>(b)];
    const at::Tensor valid =
        AnchorValidFlags(feat_sizes, anchor_options.strides, generator.num_base_anchors(), h, w);
    const RpnTargets t = ComputeRpnTargets(anchors, valid, g.boxes.to(opts.dtype()),
                                           config.rpn_target_stds, train_config.rpn_assigner,
                                           train_config.rpn_sampler, generators[static_cast<size_t>(b)]);
    rpn_cls_sum = rpn_cls_sum + (at::binary_cross_entropy_with_logits(
                                     rpn_cls[b], t.labels, {}, {}, at::Reduction::None) *
                                 t.label_weights)
                                    .sum();
    rpn_reg_sum =
        rpn_reg_sum +
        ((rpn_reg[b] - t.delta_targets).abs() * t.delta_weights.unsqueeze(1)).sum();
    rpn_count += t.avg_factor();
  }
  losses.terms[0] = {rpn_cls_sum, rpn_count};
  losses.terms[1] = {rpn_reg_sum, rpn_count};

  // Proposals from the detached RPN outputs, then the sampled RoIs per image.
  RpnOutputs detached;
  for (const at::Tensor& c : rpn.cls) detached.cls.push_back(c.detach());
  for (const at::Tensor& r : rpn.reg) detached.reg.push_back(r.detach());
  std::vector<at::Tensor> sampled_boxes, pos_boxes;
  std::vector<at::Tensor> labels, delta_targets, pos_labels, mask_targets;
  std::vector<int64_t> num_pos;
  for (int64_t b = 0; b < B; ++b) {
    const DetectionGroundTruth& g = gt[static_cast<size_t>(b)];
    at::Tensor proposals, scores;
    {
      c10::NoGradGuard no_grad;
      const auto [h, w] = image_sizes[static_cast<size_t>(b)];
      model.Proposals(detached, b, h, w, train_config.rpn_proposal_nms_pre,
                      train_config.rpn_proposal_max_per_img, proposals, scores);
      if (!proposals.defined()) proposals = at::zeros({0, 4}, opts);
    }
    const RoiTargets t =
        ComputeRoiTargets(proposals, g.boxes.to(opts.dtype()), g.labels, K, config.rcnn_target_stds,
                          train_config.rcnn_assigner, train_config.rcnn_sampler,
                          generators[static_cast<size_t>(b)]);
    sampled_boxes.push_back(t.boxes);
    labels.push_back(t.labels);
    delta_targets.push_back(t.delta_targets);
    num_pos.push_back(t.num_pos);
    const at::Tensor pb = t.boxes.slice(0, 0, t.num_pos);
    pos_boxes.push_back(pb);
    pos_labels.push_back(t.labels.slice(0, 0, t.num_pos));
    mask_targets.push_back(
        MaskTargets(pb, g.masks, t.pos_gt_inds, 2 * static_cast<int64_t>(config.mask_roi_size)));
  }

  // Box head on the sampled RoIs of all images.
  const at::Tensor rois = BoxesToRois(sampled_boxes);
  const at::Tensor roi_feats =
      ExtractRoiFeatures(feats, rois, RoiExtractorOptionsFor(config, config.bbox_roi_size));
  const auto [cls_score, bbox_pred] = model.bbox_head()->forward(roi_feats);
  const at::Tensor all_labels = at::cat(labels);
  const double num_rois = static_cast<double>(all_labels.size(0));
  losses.terms[2] = {at::cross_entropy_loss(cls_score, all_labels, {}, at::Reduction::Sum),
                     num_rois};
  // The positives' rows of each image, and their label's 4 deltas.
  std::vector<at::Tensor> pos_rows;
  int64_t start = 0;
  for (int64_t b = 0; b < B; ++b) {
    pos_rows.push_back(at::arange(start, start + num_pos[static_cast<size_t>(b)], all_labels.options()));
    start += sampled_boxes[static_cast<size_t>(b)].size(0);
  }
  const at::Tensor rows = at::cat(pos_rows);
  const at::Tensor plabels = at::cat(pos_labels);
  const at::Tensor pred = bbox_pred.view({bbox_pred.size(0), K, 4}).index_select(0, rows);
  const at::Tensor pos_pred =
      pred.gather(1, plabels.view({-1, 1, 1}).expand({rows.size(0), 1, 4})).squeeze(1);
  const at::Tensor pos_targets = at::cat(delta_targets).index_select(0, rows);
  losses.terms[3] = {(pos_pred - pos_targets).abs().sum(), num_rois};

  // Mask head on the positive RoIs.
  const at::Tensor mask_rois = BoxesToRois(pos_boxes);
  const at::Tensor targets = at::cat(mask_targets);  // [P, S, S]
  if (mask_rois.size(0) == 0) {
    // No positive anywhere: a zero that still depends on the mask head (as mmdet's
    // mask_pred.sum() * 0), so every rank back-propagates the same graph shape.
    at::Tensor zero = at::zeros({}, opts);
    for (const at::Tensor& p : model.mask_head()->parameters()) zero = zero + p.sum() * 0;
    losses.terms[4] = {zero, 0.0};
  } else {
    const at::Tensor mask_feats =
        ExtractRoiFeatures(feats, mask_rois, RoiExtractorOptionsFor(config, config.mask_roi_size));
    const at::Tensor logits = model.mask_head()->forward(mask_feats);  // [P, K, S, S]
    const int64_t p = logits.size(0), s = logits.size(2);
    const at::Tensor chosen =
        logits.gather(1, plabels.view({-1, 1, 1, 1}).expand({p, 1, s, logits.size(3)})).squeeze(1);
    losses.terms[4] = {
        at::binary_cross_entropy_with_logits(chosen, targets, {}, {}, at::Reduction::Sum),
        static_cast<double>(targets.numel())};
  }
  return losses;
}

}  // namespace psaq::detect
