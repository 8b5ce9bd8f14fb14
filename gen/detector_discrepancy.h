// The teacher-student discrepancy D of the detector V2 reconstruction (docs/detection.md,
// "Data-free generation"): per image, between the float detector's outputs and the quantized
// detector's outputs on the same images. PSAQ-ViT V2's paper names no detector discrepancy; this
// one is a reconstruction.
//
// D_b = w_fpn * mean over FPN levels l of ||T_l[b] - S_l[b]||^2 / (||T_l[b]||^2 + eps)
//     + w_rpn * mean over RPN levels l of the mean over anchors of
//               KL(Bernoulli(sigmoid(t)) || Bernoulli(sigmoid(s)))   (t, s objectness logits)
//     + w_roi * mean over the teacher's RoIs r of image b of
//               KL(softmax(t_cls[r]) || softmax(s_cls[r]))
//               + mean over mask pixels and classes of KL(Bernoulli(sigmoid(t_mask[r])) || ..s..)
// where the RoIs are the teacher's top roi_per_image RPN proposals of the image (detached) and
// t_cls, s_cls, t_mask, s_mask are each detector's box-head and mask-head logits on those same
// RoIs (MaskRcnn::HeadsOnRois; 0 for an image without proposals). The RoI term is the only one
// whose student gradient reaches the box and mask heads' weights.
// The FPN term is the squared error normalised by the teacher's energy of that level and image
// (the denominator is detached: the adversarial sample step cannot raise D by shrinking the
// teacher's features), so the coarse levels, whose values are larger, do not dominate. The RPN
// term is the binary KL of the objectness probabilities, computed from log-sigmoids (finite for
// confident logits). The student's own proposals would differ from the teacher's, so the RoI
// term runs the student's heads on the teacher's RoIs.
// Both terms are >= 0 and exactly 0 when teacher and student outputs are equal.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "model/detect/mask_rcnn.h"

namespace psaq::gen {

struct DetectorDiscrepancyOptions {
  double fpn_weight = 1.0;  // w_fpn; 0 drops the FPN term
  double rpn_weight = 0.0;  // w_rpn; 0 drops the RPN term (default: FPN only)
  double eps = 1e-12;       // added to the teacher's energy
  double roi_weight = 0.0;  // w_roi; 0 drops the RoI-head term. Needs w_fpn or w_rpn too.
  int64_t roi_per_image = 16;  // the teacher's top proposals per image the RoI term compares on
};

// Parses the --v2_detector_discrepancy flag: "fpn", "rpn", "fpn+rpn", "fpn+roi" or
// "fpn+rpn+roi" (weights 1 for the terms named, 0 for the others). Throws std::invalid_argument
// naming the accepted values.
DetectorDiscrepancyOptions ParseDetectorDiscrepancy(const std::string& terms);
// The inverse of the parse ("fpn", ..., or "fpn*0.5+rpn*2" for other weights).
std::string DetectorDiscrepancyName(const DetectorDiscrepancyOptions& options);

// The tensors D compares, from one forward's outputs, in a fixed order: the FPN levels (when
// w_fpn != 0), then the RPN objectness levels (when w_rpn != 0), each [B, ...]; then, when
// w_roi != 0, heads->cls_score, heads->mask_logits and `rois` (the RoIs both were computed on:
// the teacher's, passed to the student's heads too). Callers cache the teacher's (e.g. under
// no-grad) and pass them back to DetectorDiscrepancy.
// REQUIRES (TORCH_CHECK): heads and rois [R, 5] when w_roi != 0.
std::vector<at::Tensor> DetectorDiscrepancyTargets(const detect::DetectorOutputs& outputs,
                                                   const DetectorDiscrepancyOptions& options,
                                                   const detect::RoiHeadOutputs* heads = nullptr,
                                                   const at::Tensor& rois = {});

// D_b [B] from the teacher's and the student's DetectorDiscrepancyTargets (same options).
// Differentiable w.r.t. both (the teacher's energy excepted).
// REQUIRES (TORCH_CHECK): w_fpn or w_rpn non-zero, matching counts and shapes, the same RoIs.
at::Tensor DetectorDiscrepancy(const std::vector<at::Tensor>& teacher,
                               const std::vector<at::Tensor>& student,
                               const DetectorDiscrepancyOptions& options);

}  // namespace psaq::gen
