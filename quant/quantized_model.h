// A float VisionModel seen through fake quantizers: the tap observer that turns a model into
// PSAQ's quantized model (docs/psaq_spec.md §1.1, §3) without copying any model code.
//
// It owns one weight quantizer per kWeight tap, and one ActivationQuantizer plus one RangeObserver
// per kActivation tap (feature taps are ignored). Modes:
//   kFloat      pass-through: Forward() is the float model's forward, bit for bit.
//   kCalibrate  pass-through; every activation tap's float value is folded into its observer.
//   kQuantized  every weight and activation is fake-quantized (straight-through gradients, so a
//               V2 student trains its latent float weights through it).
// The float model keeps its float parameters; in kQuantized the weights are requantized from
// them at every forward (unless frozen by an import, see FreezeWeight).
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
#include "quant/activation_quantizer.h"
#include "quant/quant_config.h"
#include "quant/quantizer.h"
#include "quant/range_observer.h"
#include "quant/repq_fold.h"

namespace psaq::quant {

// The activation tap of the input image (every model of model/ registers it first).
inline constexpr const char* kInputTap = "input";

class QuantizedModel : public model::TapObserver {
 public:
  enum class Mode { kFloat, kCalibrate, kQuantized };

  // Builds the quantizers for every tap of `model`. Starts in kFloat with no ranges.
  // Throws c10::Error for an invalid config, a bits_overrides key that names no weight or
  // activation tap, or InputRange::kPixelBox for a model without an activation tap "input"
  // (kInputTap). REQUIRES: model non-null.
  QuantizedModel(model::ModelPtr model, QuantConfig config = {});
  ~QuantizedModel() override;
  QuantizedModel(const QuantizedModel&) = delete;
  QuantizedModel& operator=(const QuantizedModel&) = delete;

  // x: [B, in_chans, H, W] -> the model's output ([B, num_classes]) in the current mode.
  at::Tensor Forward(const at::Tensor& x);

  Mode mode() const { return mode_; }
  // kQuantized REQUIRES every enabled activation quantizer to have a range: otherwise throws
  // c10::Error listing the taps without one (and the mode is unchanged).
  void SetMode(Mode mode);

  model::VisionModel& model() { return *model_; }
  const model::VisionModel& model() const { return *model_; }
  const model::ModelPtr& model_ptr() const { return model_; }
  const QuantConfig& config() const { return config_; }

  // Tap ids (indices into model().taps().taps()), in forward order.
  const std::vector<int>& weight_taps() const { return weight_taps_; }
  const std::vector<int>& activation_taps() const { return activation_taps_; }
  const model::TapInfo& tap(int id) const;
  // The id of the weight or activation tap `name`; throws c10::Error when there is none.
  int TapId(const std::string& name) const;

  // REQUIRES: `id` is a weight tap (TORCH_CHECK).
  const Quantizer& weight_quantizer(int id) const;
  // REQUIRES: `id` is an activation tap (TORCH_CHECK).
  ActivationQuantizer& activation_quantizer(int id);
  const ActivationQuantizer& activation_quantizer(int id) const;
  RangeObserver& observer(int id);
  const RangeObserver& observer(int id) const;

  // Resets every observer to "nothing observed".
  void ResetObservers();
  // Sets each activation quantizer's range from its observer, except the input tap's under
  // InputRange::kPixelBox (the model's normalised pixel box). Under QuantizerKind::kRepq each
  // post-LayerNorm point (FindFoldSites, quantizer enabled) was observed per channel: its channel
  // scales are folded into the model's LayerNorm and Linear parameters (ApplyChannelFold: the
  // model's parameters CHANGE, its float function does not) and its range becomes the per-tensor
  // target range; calling it again folds again on top (still exact). Throws c10::Error listing
  // the taps whose observer saw nothing (no range or parameter is changed then).
  void ApplyObservedRanges();
  // Replaces weight tap `id`'s quantizer with a FrozenWeightQuantizer on (codes, scale) (see
  // quant/weight_quantizer.h). For imports. Throws c10::Error on inconsistent arguments.
  void FreezeWeight(int id, const at::Tensor& codes, const at::Tensor& scale);
  bool weight_frozen(int id) const;

  // TapObserver: weight and activation taps only.
  at::Tensor OnTap(int id, const model::TapInfo& info, const at::Tensor& x) override;

  // The mask Forward() attaches with: weights and activations.
  static constexpr uint32_t kTapMask =
      model::TapMask(model::TapKind::kWeight) | model::TapMask(model::TapKind::kActivation);

 private:
  int BitsFor(const model::TapInfo& info) const;

  model::ModelPtr model_;
  QuantConfig config_;
  Mode mode_ = Mode::kFloat;
  std::vector<int> weight_taps_;
  std::vector<int> activation_taps_;
  // Indexed by tap id; null where the tap is of another kind.
  std::vector<std::unique_ptr<Quantizer>> weight_quantizers_;
  std::vector<std::unique_ptr<ActivationQuantizer>> activation_quantizers_;
  std::vector<std::unique_ptr<RangeObserver>> observers_;
  // QuantizerKind::kRepq: (tap id, site) of each enabled post-LayerNorm point (quant/repq_fold.h).
  std::vector<std::pair<int, FoldSite>> fold_sites_;
  // The input tap's range under InputRange::kPixelBox.
  std::pair<double, double> pixel_box_{0, 0};
};

// True for a post-softmax attention tap ("<attention path>.softmax", model/attention.h
// kSoftmaxPoint).
// Under QuantizerKind::kPsaq it stays at 32 bits (float) unless bits_overrides names it; under
// kRepq it gets a LogSqrt2Quantizer (quant/log_sqrt2_quantizer.h) at the activation bits.
bool IsSoftmaxTap(const std::string& name);

// "uniform" (ActivationQuantizer) or "log_sqrt2" (LogSqrt2Quantizer): the quantizer kind of an
// activation point in exports and psaq inspect.
std::string ActivationQuantizerName(const ActivationQuantizer& q);

// "float", "calibrate", "quantized".
std::string ModeName(QuantizedModel::Mode mode);

}  // namespace psaq::quant
