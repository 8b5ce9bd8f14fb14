// A float VisionModel seen through fake quantizers: the tap observer that turns a model into
// PSAQ's quantized model (docs/psaq_spec.md §1.1, §3) without copying any model code.
//
// The quantizer bank, its modes and its per-tap accessors are quant/tap_quantizers.h's (shared
// with the detector's QuantizedDetector); this class adds the classifier: Forward() returns the
// logits, model() the VisionModel, and QuantizerKind::kRepq's LayerNorm folds.
//   kFloat      pass-through: Forward() is the float model's forward, bit for bit.
//   kCalibrate  pass-through; every activation tap's float value is folded into its observer.
//   kQuantized  every weight and activation is fake-quantized (straight-through gradients).
//
// Lifetime: shares the model. Forward() attaches this observer to the model's TapSet for the
// call only (restoring any previous observer). To combine with feature capture, attach an
// observer of your own for all kinds that calls OnTap() for weight and activation taps, and call
// model().forward() directly. Not thread-safe; one forward at a time, like the model.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/tap.h"
#include "model/vision_model.h"
#include "quant/quant_config.h"
#include "quant/repq_fold.h"
#include "quant/tap_quantizers.h"

namespace psaq::quant {

class QuantizedModel : public TapQuantizers {
 public:
  // Builds the quantizers for every tap of `model`. Starts in kFloat with no ranges.
  // Throws c10::Error for an invalid config, a bits_overrides key that names no weight or
  // activation tap, or InputRange::kPixelBox for a model without an activation tap "input"
  // (kInputTap). REQUIRES: model non-null.
  QuantizedModel(model::ModelPtr model, QuantConfig config = {});
  ~QuantizedModel() override;

  // x: [B, in_chans, H, W] -> the model's output ([B, num_classes]) in the current mode.
  at::Tensor Forward(const at::Tensor& x);

  model::VisionModel& model() { return *model_; }
  const model::VisionModel& model() const { return *model_; }
  const model::ModelPtr& model_ptr() const { return model_; }

  // ApplyObservedRanges (tap_quantizers.h), with QuantizerKind::kRepq: each post-LayerNorm point
  // (FindFoldSites, quantizer enabled) was observed per channel: its channel scales are folded
  // into the model's LayerNorm and Linear parameters (ApplyChannelFold: the model's parameters
  // CHANGE, its float function does not) and its range becomes the per-tensor target range;
  // calling it again folds again on top (still exact).

 protected:
  void FoldRanges(std::vector<bool>& handled) override;

 private:
  model::ModelPtr model_;
  // QuantizerKind::kRepq: (tap id, site) of each enabled post-LayerNorm point (quant/repq_fold.h).
  std::vector<std::pair<int, FoldSite>> fold_sites_;
};

}  // namespace psaq::quant
