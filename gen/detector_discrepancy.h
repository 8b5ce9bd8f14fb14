// The teacher-student discrepancy D of the detector V2 reconstruction (docs/detection.md,
// "Data-free generation"): per image, between the float detector's outputs and the quantized
// detector's outputs on the same images. PSAQ-ViT V2's paper names no detector discrepancy; this
// one is a reconstruction.
//
// D_b = w_fpn * mean over FPN levels l of ||T_l[b] - S_l[b]||^2 / (||T_l[b]||^2 + eps)
//     + w_rpn * mean over RPN levels l of the mean over anchors of
//               KL(Bernoulli(sigmoid(t)) || Bernoulli(sigmoid(s)))   (t, s objectness logits)
// The FPN term is the squared error normalised by the teacher's energy of that level and image
// (the denominator is detached: the adversarial sample step cannot raise D by shrinking the
// teacher's features), so the coarse levels, whose values are larger, do not dominate. The RPN
// term is the binary KL of the objectness probabilities, computed from log-sigmoids (finite for
// confident logits). Box-head logits are not compared: the student's proposals differ from the
// teacher's, and the RPN maps already carry what the proposals are made from.
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
};

// Parses the --v2_detector_discrepancy flag: "fpn", "rpn" or "fpn+rpn" (weights 1 for the terms named,
// 0 for the others). Throws std::invalid_argument naming the accepted values.
DetectorDiscrepancyOptions ParseDetectorDiscrepancy(const std::string& terms);
// The inverse of the parse ("fpn", "rpn", "fpn+rpn", or "fpn*0.5+rpn*2" for other weights).
std::string DetectorDiscrepancyName(const DetectorDiscrepancyOptions& options);

// The tensors D compares, from one forward's outputs, in a fixed order: the FPN levels (when
// w_fpn != 0), then the RPN objectness levels (when w_rpn != 0); each [B, ...]. Callers cache the
// teacher's (e.g. under no-grad) and pass them back to DetectorDiscrepancy.
std::vector<at::Tensor> DetectorDiscrepancyTargets(const detect::DetectorOutputs& outputs,
                                                   const DetectorDiscrepancyOptions& options);

// D_b [B] from the teacher's and the student's DetectorDiscrepancyTargets (same options).
// Differentiable w.r.t. both (the teacher's energy excepted).
// REQUIRES (TORCH_CHECK): at least one non-zero weight, matching counts and shapes.
at::Tensor DetectorDiscrepancy(const std::vector<at::Tensor>& teacher,
                               const std::vector<at::Tensor>& student,
                               const DetectorDiscrepancyOptions& options);

}  // namespace psaq::gen
