// The quantizer bank over a model's taps: what turns any tapped float network (a classifier,
// quant/quantized_model.h, or a detector, quant/quantized_detector.h) into PSAQ's fake-quantized
// network (docs/psaq_spec.md §1.1, §3) without copying any model code.
//
// It owns one weight quantizer per kWeight tap, and one ActivationQuantizer plus one RangeObserver
// per kActivation tap (feature taps are ignored). Modes:
//   kFloat      pass-through: the network's forward, bit for bit (the owner does not attach).
//   kCalibrate  pass-through; every activation tap's float value is folded into its observer.
//   kQuantized  every enabled weight and activation is fake-quantized (straight-through
//               gradients, so a V2 student trains its latent float weights through it).
// A tap outside the scope (see the constructor) gets bit width kBitsOff: it stays float in every
// mode, its observer still observes (so calibration checks that the forward reached it).
// The network keeps its float parameters; in kQuantized the weights are requantized from them at
// every forward (unless frozen by an import, see FreezeWeight).
//
// The owner (a derived class) runs the forward: in kFloat without attaching, otherwise with this
// observer attached to the TapSet for the call only (kTapMask). Not thread-safe.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/tap.h"
#include "quant/activation_quantizer.h"
#include "quant/quant_config.h"
#include "quant/quantizer.h"
#include "quant/range_observer.h"

namespace psaq::quant {

// The activation tap of the input image (every model of model/ registers it first).
inline constexpr const char* kInputTap = "input";

// Throws c10::Error naming the first name of `overrides` (QuantConfig::bits_overrides) that is not
// a weight or activation tap of `taps` (a typo or another model's name would otherwise be ignored
// silently); `model_name` is for the message. TapQuantizers checks this when it is built; a job
// may check it earlier, before it spends time making samples.
void CheckBitsOverrides(const model::TapSet& taps, const std::map<std::string, int>& overrides,
                        const std::string& model_name);

// True for the taps a quantization scope covers; the default covers every tap.
using TapScopePredicate = std::function<bool(const model::TapInfo&)>;

class TapQuantizers : public model::TapObserver {
 public:
  enum class Mode { kFloat, kCalibrate, kQuantized };

  ~TapQuantizers() override;
  TapQuantizers(const TapQuantizers&) = delete;
  TapQuantizers& operator=(const TapQuantizers&) = delete;

  Mode mode() const { return mode_; }
  // kQuantized REQUIRES every enabled activation quantizer to have a range: otherwise throws
  // c10::Error listing the taps without one (and the mode is unchanged).
  void SetMode(Mode mode);

  // The network whose parameters the quantizers read (for state dicts, devices, V2 students).
  torch::nn::Module& module() { return *module_; }
  const torch::nn::Module& module() const { return *module_; }
  model::TapSet& tap_set() { return *taps_; }
  const model::TapSet& tap_set() const { return *taps_; }
  // The network's name, in error messages.
  const std::string& network_name() const { return name_; }
  const QuantConfig& config() const { return config_; }

  // Tap ids (indices into tap_set().taps()), in forward order.
  const std::vector<int>& weight_taps() const { return weight_taps_; }
  const std::vector<int>& activation_taps() const { return activation_taps_; }
  const model::TapInfo& tap(int id) const;
  // The id of the weight or activation tap `name`; throws c10::Error when there is none.
  int TapId(const std::string& name) const;
  // True when tap `id` is inside the scope given at construction.
  bool in_scope(int id) const;

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
  // InputRange::kPixelBox (the normalised pixel box given at construction), and except the taps
  // a derived class sets itself (FoldRanges). Throws c10::Error listing the taps whose observer
  // saw nothing (no range or parameter is changed then).
  void ApplyObservedRanges();
  // Replaces weight tap `id`'s quantizer with a FrozenWeightQuantizer on (codes, scale) (see
  // quant/weight_quantizer.h). For imports. Throws c10::Error on inconsistent arguments.
  void FreezeWeight(int id, const at::Tensor& codes, const at::Tensor& scale);
  bool weight_frozen(int id) const;

  // TapObserver: weight and activation taps only.
  at::Tensor OnTap(int id, const model::TapInfo& info, const at::Tensor& x) override;

  // The mask a forward attaches with: weights and activations.
  static constexpr uint32_t kTapMask =
      model::TapMask(model::TapKind::kWeight) | model::TapMask(model::TapKind::kActivation);

 protected:
  // Builds the quantizers for every tap of `taps`; starts in kFloat with no ranges. `module`
  // owns the parameters the taps see; `name` names the network in errors; `pixel_box` is the
  // input tap's range under InputRange::kPixelBox (min and max over channels); `scope` selects
  // the quantized taps (null: all). A bits_overrides entry sets its tap's bits even outside the
  // scope (an explicit per-point choice wins). Throws c10::Error for an invalid config, a
  // bits_overrides key that names no weight or activation tap, or kPixelBox without an
  // activation tap "input". `taps` and `module` must outlive this object's use of them: a derived
  // class that owns the network (its members die before this base's destructor runs) calls
  // DetachFromTaps() in its own destructor; this base's destructor does not touch `taps`.
  TapQuantizers(model::TapSet& taps, torch::nn::Module& module, std::string name,
                std::pair<double, double> pixel_box, QuantConfig config,
                const TapScopePredicate& scope = nullptr);

  // Called by ApplyObservedRanges after the check that every observer saw something and before
  // the plain ranges are set: a derived class sets the ranges of the taps it handles itself
  // (RepQ's channel folds) and marks them in `handled` (indexed by tap id). Default: none.
  virtual void FoldRanges(std::vector<bool>& handled) { (void)handled; }

  // Detaches this observer from the taps if it is the attached one. Derived destructors call it
  // while the network is still alive.
  void DetachFromTaps();

  // For derived constructors: replace an activation tap's quantizer or observer.
  void ReplaceActivationQuantizer(int id, std::unique_ptr<ActivationQuantizer> q);
  void ReplaceObserver(int id, std::unique_ptr<RangeObserver> observer);

 private:
  int BitsFor(const model::TapInfo& info, bool in_scope) const;

  model::TapSet* taps_;
  torch::nn::Module* module_;
  std::string name_;
  QuantConfig config_;
  Mode mode_ = Mode::kFloat;
  std::vector<int> weight_taps_;
  std::vector<int> activation_taps_;
  std::vector<bool> in_scope_;  // indexed by tap id
  // Indexed by tap id; null where the tap is of another kind.
  std::vector<std::unique_ptr<Quantizer>> weight_quantizers_;
  std::vector<std::unique_ptr<ActivationQuantizer>> activation_quantizers_;
  std::vector<std::unique_ptr<RangeObserver>> observers_;
  // The input tap's range under InputRange::kPixelBox.
  std::pair<double, double> pixel_box_{0, 0};
};

// True for a post-softmax attention tap ("<attention path>.softmax", model/attention.h
// kSoftmaxPoint).
// Under QuantizerKind::kPsaq it stays at 32 bits (float) unless bits_overrides names it; under
// kRepq it gets a LogSqrt2Quantizer (quant/log_sqrt2_quantizer.h) at the activation bits.
bool IsSoftmaxTap(const std::string& name);

// True for an activation tap that RepQ-ViT quantizes: the input of a Linear, Conv or matmul
// (its QuantLinear / QuantConv2d / QuantMatMul input quantizers). In psaq's tap names: "input"
// (the patch embedding's Conv), "<block>.norm1.out" (qkv), "<attn>.qkv.out" (q, k and v, the two
// matmuls' inputs), "<attn>.softmax" (the second matmul's), "<attn>.av" (proj), "<block>.norm2.out"
// (fc1), "<mlp>.act" (fc2), "<downsample>.norm.out" (Swin's patch-merging reduction) and
// "pool.out" (head). Under QuantizerKind::kRepq every other activation tap (the residual sums, the
// pre-softmax logits and bias, the Linear outputs, the position-embedding sum, the class logits)
// stays at 32 bits unless bits_overrides names it; weights are quantized as under kPsaq.
bool IsRepqActivationPoint(const std::string& name);

// "uniform" (ActivationQuantizer) or "log_sqrt2" (LogSqrt2Quantizer): the quantizer kind of an
// activation point in exports and psaq inspect.
std::string ActivationQuantizerName(const ActivationQuantizer& q);

// "float", "calibrate", "quantized".
std::string ModeName(TapQuantizers::Mode mode);

}  // namespace psaq::quant
