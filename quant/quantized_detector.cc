#include "quant/quantized_detector.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <stdexcept>
#include <utility>
#include <vector>

#include "model/detect/roi_extractor.h"

namespace psaq::quant {
namespace {

detect::MaskRcnn& Checked(const detect::DetectorPtr& detector, const QuantConfig& config) {
  TORCH_CHECK(detector != nullptr, "QuantizedDetector: null detector");
  TORCH_CHECK(config.quantizer != QuantizerKind::kRepq,
              "--quantizer=repq is not supported for detectors (its LayerNorm folds are the "
              "classifiers'); use --quantizer=psaq");
  return *detector;
}

// Pixels 0..255 normalised by the config's mean/std: the lowest channel bound to the highest.
std::pair<double, double> PixelBox(const detect::DetectorConfig& config) {
  double lo = 0, hi = 0;
  for (size_t c = 0; c < config.mean.size() && c < config.std.size(); ++c) {
    const double a = (0.0 - config.mean[c]) / config.std[c];
    const double b = (255.0 - config.mean[c]) / config.std[c];
    lo = c == 0 ? a : std::min(lo, a);
    hi = c == 0 ? b : std::max(hi, b);
  }
  return {lo, hi};
}

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

std::string DetectorScopeName(DetectorScope scope) {
  switch (scope) {
    case DetectorScope::kBackbone:
      return "backbone";
    case DetectorScope::kBackboneNeck:
      return "backbone_neck";
    case DetectorScope::kAll:
      return "all";
  }
  TORCH_INTERNAL_ASSERT(false, "unknown DetectorScope");
}

DetectorScope ParseDetectorScope(const std::string& name) {
  if (name == "backbone") return DetectorScope::kBackbone;
  if (name == "backbone_neck") return DetectorScope::kBackboneNeck;
  if (name == "all") return DetectorScope::kAll;
  throw std::invalid_argument("'" + name + "' is not a quantization scope (backbone, " +
                              "backbone_neck or all)");
}

bool InDetectorScope(const std::string& name, DetectorScope scope) {
  if (name == kInputTap || StartsWith(name, "backbone.")) return true;
  if (scope == DetectorScope::kBackbone) return false;
  if (StartsWith(name, "neck.")) return true;
  return scope == DetectorScope::kAll;
}

QuantizedDetector::QuantizedDetector(detect::DetectorPtr detector, QuantConfig config,
                                     DetectorScope scope)
    // Every argument goes through Checked: their evaluation order is unspecified.
    : TapQuantizers(Checked(detector, config).taps(), Checked(detector, config),
                    Checked(detector, config).config().name,
                    PixelBox(Checked(detector, config).config()), config,
                    [scope](const model::TapInfo& info) { return InDetectorScope(info.name, scope); }),
      detector_(std::move(detector)),
      scope_(scope) {
  mask_roi_tap_ = detector_->taps().Find("roi_head.mask_roi_extractor.out");
  TORCH_CHECK(mask_roi_tap_ >= 0, "QuantizedDetector: detector has no mask RoI tap");
}

QuantizedDetector::~QuantizedDetector() { DetachFromTaps(); }

detect::DetectorOutputs QuantizedDetector::Forward(const at::Tensor& images,
                                                   detect::DetectorStage until) {
  TORCH_CHECK(mode() != Mode::kCalibrate || until == detect::DetectorStage::kAll,
              "QuantizedDetector: calibration runs the whole detector (every tap)");
  // kFloat does not attach at all, so it is the float forward bit for bit.
  if (mode() == Mode::kFloat) return detector_->Features(images, until);
  model::ScopedTapObserver attach(detector_->taps(), this, kTapMask);
  detect::DetectorOutputs out = detector_->Features(images, until);
  if (mode() == Mode::kCalibrate) ObserveMaskBranch(out);
  return out;
}

detect::RoiHeadOutputs QuantizedDetector::HeadsOnRois(const std::vector<at::Tensor>& fpn,
                                                      const at::Tensor& rois) {
  TORCH_CHECK(mode() != Mode::kCalibrate,
              "QuantizedDetector: calibration runs the whole detector (every tap)");
  if (mode() == Mode::kFloat) return detector_->HeadsOnRois(fpn, rois);
  model::ScopedTapObserver attach(detector_->taps(), this, kTapMask);
  return detector_->HeadsOnRois(fpn, rois);
}

void QuantizedDetector::ObserveMaskBranch(const detect::DetectorOutputs& out) {
  const detect::DetectorConfig& config = detector_->config();
  if (out.detections.empty()) return;
  // Images with detections keep no box here (their masks already passed the mask head).
  std::vector<at::Tensor> boxes;
  for (size_t b = 0; b < out.detections.size(); ++b) {
    const int64_t keep = out.detections[b].boxes.size(0) > 0 ? 0 : config.max_per_img;
    boxes.push_back(out.proposals[b].slice(0, 0, keep));
  }
  const at::Tensor rois = detect::BoxesToRois(boxes);
  if (rois.size(0) == 0) return;
  at::Tensor feats = detect::ExtractRoiFeatures(
      out.fpn, rois, detect::RoiExtractorOptionsFor(config, config.mask_roi_size));
  feats = detector_->taps().Apply(mask_roi_tap_, feats);
  detector_->mask_head()->forward(feats);
}

}  // namespace psaq::quant
