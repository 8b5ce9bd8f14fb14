#include "quant/tap_quantizers.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <utility>

#include "model/attention.h"  // kSoftmaxPoint
#include "quant/granularity.h"
#include "quant/log_sqrt2_quantizer.h"
#include "quant/uniform.h"
#include "quant/weight_quantizer.h"

namespace psaq::quant {

namespace {

// True when `name` ends in `suffix` and has something before it.
bool HasProperSuffix(const std::string& name, const std::string& suffix) {
  return name.size() > suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

void CheckBitsOverrides(const model::TapSet& taps, const std::map<std::string, int>& overrides,
                        const std::string& model_name) {
  for (const auto& [tap_name, bits] : overrides) {
    const int id = taps.Find(tap_name);
    TORCH_CHECK(id >= 0 && taps.taps()[static_cast<size_t>(id)].kind != model::TapKind::kFeature,
                "bits override '", tap_name, "' (QuantConfig.bits_overrides) is not a weight or "
                "activation tap of ", model_name,
                " ('psaq inspect --file=<a quantized export of it>' lists its points)");
  }
}

bool IsSoftmaxTap(const std::string& name) {
  return HasProperSuffix(name, std::string(".") + model::kSoftmaxPoint);
}

bool IsRepqActivationPoint(const std::string& name) {
  if (name == kInputTap || name == "pool.out" || IsSoftmaxTap(name)) return true;
  for (const char* suffix :
       {".norm1.out", ".norm2.out", ".qkv.out", ".av", ".mlp.act", ".downsample.norm.out"}) {
    if (HasProperSuffix(name, suffix)) return true;
  }
  return false;
}

std::string ActivationQuantizerName(const ActivationQuantizer& q) {
  return dynamic_cast<const LogSqrt2Quantizer*>(&q) != nullptr ? "log_sqrt2" : "uniform";
}

std::string ModeName(TapQuantizers::Mode mode) {
  switch (mode) {
    case TapQuantizers::Mode::kFloat:
      return "float";
    case TapQuantizers::Mode::kCalibrate:
      return "calibrate";
    case TapQuantizers::Mode::kQuantized:
      return "quantized";
  }
  TORCH_INTERNAL_ASSERT(false, "unknown Mode");
}

TapQuantizers::TapQuantizers(model::TapSet& taps, torch::nn::Module& module, std::string name,
                             std::pair<double, double> pixel_box, QuantConfig config,
                             const TapScopePredicate& scope)
    : taps_(&taps), module_(&module), name_(std::move(name)), config_(std::move(config)) {
  ValidateQuantConfig(config_);
  // Indexed by tap id (slots of other kinds stay empty), so OnTap, which runs at every tap of
  // every forward, needs no lookup.
  const std::vector<model::TapInfo>& infos = taps_->taps();
  weight_quantizers_.resize(infos.size());
  activation_quantizers_.resize(infos.size());
  observers_.resize(infos.size());
  in_scope_.resize(infos.size(), true);
  CheckBitsOverrides(*taps_, config_.bits_overrides, name_);
  if (config_.input_range == InputRange::kPixelBox) {
    const int id = taps_->Find(kInputTap);
    TORCH_CHECK(id >= 0 && infos[static_cast<size_t>(id)].kind == model::TapKind::kActivation,
                "QuantConfig.input_range = pixel_box: ", name_, " has no activation tap '",
                kInputTap, "'");
    pixel_box_ = pixel_box;
  }
  for (size_t i = 0; i < infos.size(); ++i) {
    const int id = static_cast<int>(i);
    if (scope) in_scope_[i] = scope(infos[i]);
    switch (infos[i].kind) {
      case model::TapKind::kWeight:
        weight_taps_.push_back(id);
        weight_quantizers_[i] = std::make_unique<MinMaxWeightQuantizer>(
            BitsFor(infos[i], in_scope_[i]), MakeGranularity(config_.weight_granularity));
        break;
      case model::TapKind::kActivation: {
        activation_taps_.push_back(id);
        const int bits = BitsFor(infos[i], in_scope_[i]);
        const bool log_sqrt2 =
            IsSoftmaxTap(infos[i].name) && config_.quantizer == QuantizerKind::kRepq;
        if (log_sqrt2) {
          activation_quantizers_[i] = std::make_unique<LogSqrt2Quantizer>(bits);
        } else {
          activation_quantizers_[i] = std::make_unique<ActivationQuantizer>(bits);
        }
        observers_[i] = MakeObserver(
            config_.act_observer, bits,
            log_sqrt2 ? ActivationGrid::kLogSqrt2 : ActivationGrid::kUniform);
        break;
      }
      case model::TapKind::kFeature:
        break;
    }
  }
}

// The network (and so *taps_) may already be gone here: derived classes own it and detach in
// their destructors (DetachFromTaps).
TapQuantizers::~TapQuantizers() = default;

void TapQuantizers::DetachFromTaps() {
  if (taps_->observer() == this) taps_->Detach();
}

int TapQuantizers::BitsFor(const model::TapInfo& info, bool in_scope) const {
  auto it = config_.bits_overrides.find(info.name);
  if (it != config_.bits_overrides.end()) return it->second;
  if (!in_scope) return kBitsOff;
  // PSAQ leaves the attention probabilities in float; RepQ quantizes only the inputs of
  // Linear, Conv and matmul.
  if (IsSoftmaxTap(info.name) && config_.quantizer == QuantizerKind::kPsaq) return kBitsOff;
  if (info.kind == model::TapKind::kActivation && config_.quantizer == QuantizerKind::kRepq &&
      !IsRepqActivationPoint(info.name)) {
    return kBitsOff;
  }
  return info.kind == model::TapKind::kWeight ? config_.weight_bits : config_.act_bits;
}

void TapQuantizers::SetMode(Mode mode) {
  if (mode == Mode::kQuantized) {
    std::string missing;
    for (int id : activation_taps_) {
      const ActivationQuantizer& q = *activation_quantizers_[static_cast<size_t>(id)];
      if (q.enabled() && !q.has_range()) missing += (missing.empty() ? "" : ", ") + tap(id).name;
    }
    TORCH_CHECK(missing.empty(), "QuantizedModel: cannot quantize before calibration; ",
                "activation taps without a range: ", missing);
  }
  mode_ = mode;
}

const model::TapInfo& TapQuantizers::tap(int id) const {
  const auto& infos = taps_->taps();
  TORCH_CHECK(id >= 0 && static_cast<size_t>(id) < infos.size(), "tap id ", id, " out of range");
  return infos[static_cast<size_t>(id)];
}

int TapQuantizers::TapId(const std::string& name) const {
  const int id = taps_->Find(name);
  TORCH_CHECK(id >= 0 && tap(id).kind != model::TapKind::kFeature, "'", name,
              "' is not a weight or activation tap of ", name_);
  return id;
}

bool TapQuantizers::in_scope(int id) const {
  tap(id);  // range check
  return in_scope_[static_cast<size_t>(id)];
}

const Quantizer& TapQuantizers::weight_quantizer(int id) const {
  TORCH_CHECK(tap(id).kind == model::TapKind::kWeight, "tap '", tap(id).name,
              "' is not a weight tap");
  return *weight_quantizers_[static_cast<size_t>(id)];
}

ActivationQuantizer& TapQuantizers::activation_quantizer(int id) {
  TORCH_CHECK(tap(id).kind == model::TapKind::kActivation, "tap '", tap(id).name,
              "' is not an activation tap");
  return *activation_quantizers_[static_cast<size_t>(id)];
}

const ActivationQuantizer& TapQuantizers::activation_quantizer(int id) const {
  return const_cast<TapQuantizers*>(this)->activation_quantizer(id);
}

RangeObserver& TapQuantizers::observer(int id) {
  TORCH_CHECK(tap(id).kind == model::TapKind::kActivation, "tap '", tap(id).name,
              "' is not an activation tap");
  return *observers_[static_cast<size_t>(id)];
}

const RangeObserver& TapQuantizers::observer(int id) const {
  return const_cast<TapQuantizers*>(this)->observer(id);
}

void TapQuantizers::ReplaceActivationQuantizer(int id, std::unique_ptr<ActivationQuantizer> q) {
  activation_quantizer(id);  // kind check
  activation_quantizers_[static_cast<size_t>(id)] = std::move(q);
}

void TapQuantizers::ReplaceObserver(int id, std::unique_ptr<RangeObserver> observer) {
  this->observer(id);  // kind check
  observers_[static_cast<size_t>(id)] = std::move(observer);
}

void TapQuantizers::ResetObservers() {
  for (int id : activation_taps_) observers_[static_cast<size_t>(id)]->Reset();
}

void TapQuantizers::ApplyObservedRanges() {
  std::string missing;
  for (int id : activation_taps_) {
    if (!observers_[static_cast<size_t>(id)]->initialized()) {
      missing += (missing.empty() ? "" : ", ") + tap(id).name;
    }
  }
  // All taps are checked before any range is set: a failed calibration changes nothing.
  TORCH_CHECK(missing.empty(), "calibration saw nothing at activation taps: ", missing,
              " (did the forward pass reach them?)");
  std::vector<bool> handled(activation_quantizers_.size(), false);
  FoldRanges(handled);
  for (int id : activation_taps_) {
    if (handled[static_cast<size_t>(id)]) continue;
    auto [min, max] = config_.input_range == InputRange::kPixelBox && tap(id).name == kInputTap
                          ? pixel_box_
                          : observers_[static_cast<size_t>(id)]->Range();
    // A log-sqrt(2) grid's range is [0, Δ]; a degenerate Δ = 0 (all probabilities 0) cannot be.
    if (ActivationQuantizerName(*activation_quantizers_[static_cast<size_t>(id)]) == "log_sqrt2") {
      min = 0;
      max = std::max(max, static_cast<double>(kScaleEps));
    }
    activation_quantizers_[static_cast<size_t>(id)]->SetRange(min, max);
  }
}

void TapQuantizers::FreezeWeight(int id, const at::Tensor& codes, const at::Tensor& scale) {
  TORCH_CHECK(tap(id).kind == model::TapKind::kWeight, "FreezeWeight: tap '", tap(id).name,
              "' is not a weight tap");
  // The tap keeps its configured bit width; only where the grid comes from changes.
  const int bits = weight_quantizers_[static_cast<size_t>(id)]->bits();
  weight_quantizers_[static_cast<size_t>(id)] =
      std::make_unique<FrozenWeightQuantizer>(bits, codes, scale);
}

bool TapQuantizers::weight_frozen(int id) const {
  return dynamic_cast<const FrozenWeightQuantizer*>(&weight_quantizer(id)) != nullptr;
}

at::Tensor TapQuantizers::OnTap(int id, const model::TapInfo& info, const at::Tensor& x) {
  const size_t i = static_cast<size_t>(id);
  switch (info.kind) {
    case model::TapKind::kWeight:
      if (mode_ != Mode::kQuantized) return x;
      return weight_quantizers_[i]->FakeQuantize(x);
    case model::TapKind::kActivation:
      // Calibration observes the float activations and passes them on unchanged. The observer's
      // error does not know the tap: rethrow with its name.
      if (mode_ == Mode::kCalibrate) {
        try {
          observers_[i]->Observe(x);
        } catch (const c10::Error& e) {
          TORCH_CHECK(false, "calibration at activation tap '", info.name,
                      "': ", e.what_without_backtrace());
        }
        return x;
      }
      if (mode_ != Mode::kQuantized) return x;
      return activation_quantizers_[i]->FakeQuantize(x);
    case model::TapKind::kFeature:
      return x;
  }
  return x;
}

}  // namespace psaq::quant
