// The Swin Mask R-CNN (model/detect/mask_rcnn.h) seen through fake quantizers: the detector's
// counterpart of QuantizedModel, on the same quantizer bank (quant/tap_quantizers.h: modes,
// SetMode, ResetObservers, ApplyObservedRanges, observers, FreezeWeight, tap lookup).
//
// Quantization scope (DetectorScope), the RepQ-ViT/APHQ-ViT choice for Swin detectors:
//   backbone       the input tap and every tap under "backbone." (patch embedding, every block's
//                  Linear weights, qkv/proj/FFN outputs, the attention matmuls' operands
//                  (q·k logits and the A·V product; the post-softmax probabilities stay float,
//                  as PSAQ's classifiers), the residual sums, the stage outputs)
//   backbone_neck  + every tap under "neck." (FPN lateral and output convs, top-down sums)
//   all            + "rpn_head." (conv, objectness and delta convs) and "roi_head." (both RoI
//                  feature maps, box-head FCs, cls/reg outputs, mask-head convs, deconv, logits)
// Always float (no tap): LayerNorm, softmax, GELU, sigmoid, RoIAlign, NMS, box decoding, mask
// pasting. Taps outside the scope get bit width 32 (kBitsOff) unless bits_overrides names them.
//
// Calibration (kCalibrate): the forward is the float detector's; the mask head then sees the
// final detections only, so an image without any would leave the mask-head observers empty
// (noise samples often give none). For each image of a calibration batch without a detection,
// the mask branch is therefore also run on that image's highest-scoring RPN proposals (at most
// config().max_per_img), its output discarded: a per-image rule, so the merged ranges do not
// depend on how the images are sharded over ranks.
//
// QuantizerKind::kRepq is refused (its LayerNorm fold sites are the classifiers').
// Lifetime: shares the detector. Forward() attaches this observer to the detector's TapSet for
// the call only (restoring any previous observer). Not thread-safe.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

#include "model/detect/mask_rcnn.h"
#include "quant/quant_config.h"
#include "quant/tap_quantizers.h"

namespace psaq::quant {

enum class DetectorScope { kBackbone, kBackboneNeck, kAll };

// "backbone" | "backbone_neck" | "all". ParseDetectorScope throws std::invalid_argument naming
// the accepted values for another name.
std::string DetectorScopeName(DetectorScope scope);
DetectorScope ParseDetectorScope(const std::string& name);

// True when the detector tap `name` (weight or activation) lies inside `scope`.
bool InDetectorScope(const std::string& name, DetectorScope scope);

class QuantizedDetector : public TapQuantizers {
 public:
  // Builds the quantizers for every tap of `detector`; starts in kFloat with no ranges.
  // Throws c10::Error for a null detector, an invalid config, QuantizerKind::kRepq ("not
  // supported for detectors"), a bits_overrides key that names no weight or activation tap.
  // InputRange::kPixelBox uses the normalised box of pixel values 0..255 under the config's
  // mean/std.
  QuantizedDetector(detect::DetectorPtr detector, QuantConfig config = {},
                    DetectorScope scope = DetectorScope::kAll);
  ~QuantizedDetector() override;

  // images: [B, in_chans, H, W] normalised (MaskRcnn::forward's contract) -> every output of
  // the detector in the current mode, or (until kFpn/kRpn) its first stages only
  // (MaskRcnn::Features), for data-free generation's teacher-student comparison.
  // REQUIRES (TORCH_CHECK): until == kAll in kCalibrate (calibration must reach every tap).
  detect::DetectorOutputs Forward(const at::Tensor& images,
                                  detect::DetectorStage until = detect::DetectorStage::kAll);
  // MaskRcnn::HeadsOnRois in the current mode. REQUIRES (TORCH_CHECK): not kCalibrate.
  detect::RoiHeadOutputs HeadsOnRois(const std::vector<at::Tensor>& fpn, const at::Tensor& rois);

  detect::MaskRcnn& detector() { return *detector_; }
  const detect::MaskRcnn& detector() const { return *detector_; }
  const detect::DetectorPtr& detector_ptr() const { return detector_; }
  DetectorScope scope() const { return scope_; }

 private:
  // kCalibrate: the mask branch on the proposals of images without a detection (see above).
  void ObserveMaskBranch(const detect::DetectorOutputs& out);

  detect::DetectorPtr detector_;
  DetectorScope scope_;
  int mask_roi_tap_ = -1;
};

}  // namespace psaq::quant
