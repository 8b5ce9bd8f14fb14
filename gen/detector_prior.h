// The label-free prior of PSAQ-ViT V2 on a detector (docs/detection.md, "Data-free generation"):
// the float Mask R-CNN's forward on the jittered samples x̃ at the detector's input size, with
// the head-averaged A·V features of every backbone block captured, and the sample loss
//   L = w_ent L_ent + λ_tv |TV(x̃) - v| + λ_l2 L2(x̃) - λ_adv mean_b D_b
// of gen/objective.h (V2SampleLoss; L_ent over the backbone's blocks, Swin windows as for the
// Swin classifiers). The entropy is always the fused one (gen/fused_entropy.h): at detector input
// sizes the reference would keep every block's window similarities and kernel tensors for
// backward. Gradients reach x̃ through the backbone (entropy) and through the whole detector (D).
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "gen/feature_capture.h"
#include "gen/kde_options.h"
#include "gen/objective.h"
#include "model/detect/mask_rcnn.h"

namespace psaq::gen {

// One teacher forward: the detector's outputs and (when asked) every block's av_mean
// [B * nW, N, d], in block order.
struct DetectorTeacherPass {
  detect::DetectorOutputs outputs;
  std::vector<at::Tensor> av_means;
};

// Runs the float detector with the feature capture. Refers to `detector`, which must outlive it;
// one forward at a time.
class DetectorTeacher {
 public:
  explicit DetectorTeacher(detect::MaskRcnn& detector);

  // x [B, C, H, W] normalised (H, W multiples of the detector's size divisor). av_means false:
  // a plain forward (no features computed). until: how far the forward goes
  // (MaskRcnn::Features; the backbone, where the av_means come from, always runs).
  DetectorTeacherPass Forward(const at::Tensor& x, bool av_means = true,
                              detect::DetectorStage until = detect::DetectorStage::kAll);

  detect::MaskRcnn& detector() { return detector_; }

 private:
  detect::MaskRcnn& detector_;
  FeatureCapture capture_;
};

// `kde` with the fused implementation (whatever was requested): the detector's entropy KDE.
KdeOptions DetectorEntropyKde(KdeOptions kde);

// V2SampleLoss on the teacher's av_means with DetectorEntropyKde(kde).
LossTerms DetectorSampleLoss(const DetectorTeacherPass& teacher, const at::Tensor& x_jittered,
                             double tv_target, const at::Tensor& discrepancy,
                             const V2SampleWeights& weights, KdeOptions kde = {});

}  // namespace psaq::gen
