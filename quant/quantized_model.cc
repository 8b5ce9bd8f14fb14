#include "quant/quantized_model.h"

#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <utility>

#include "model/attention.h"  // kSoftmaxPoint
#include "model/data/preprocess.h"
#include "quant/channel_range_observer.h"
#include "quant/granularity.h"
#include "quant/log_sqrt2_quantizer.h"
#include "quant/uniform.h"
#include "quant/weight_quantizer.h"

namespace psaq::quant {

bool IsSoftmaxTap(const std::string& name) {
  const std::string suffix = std::string(".") + model::kSoftmaxPoint;
  return name.size() > suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string ActivationQuantizerName(const ActivationQuantizer& q) {
  return dynamic_cast<const LogSqrt2Quantizer*>(&q) != nullptr ? "log_sqrt2" : "uniform";
}

std::string ModeName(QuantizedModel::Mode mode) {
  switch (mode) {
    case QuantizedModel::Mode::kFloat:
      return "float";
    case QuantizedModel::Mode::kCalibrate:
      return "calibrate";
    case QuantizedModel::Mode::kQuantized:
      return "quantized";
  }
  TORCH_INTERNAL_ASSERT(false, "unknown Mode");
}

QuantizedModel::QuantizedModel(model::ModelPtr model, QuantConfig config)
    : model_(std::move(model)), config_(std::move(config)) {
  TORCH_CHECK(model_ != nullptr, "QuantizedModel: null model");
  ValidateQuantConfig(config_);
  // Indexed by tap id (slots of other kinds stay empty), so OnTap, which runs at every tap of
  // every forward, needs no lookup.
  const std::vector<model::TapInfo>& taps = model_->taps().taps();
  weight_quantizers_.resize(taps.size());
  activation_quantizers_.resize(taps.size());
  observers_.resize(taps.size());
  // An override naming no tap would otherwise be ignored silently (a typo, another model's name).
  for (const auto& [name, bits] : config_.bits_overrides) {
    const int id = model_->taps().Find(name);
    TORCH_CHECK(id >= 0 && taps[static_cast<size_t>(id)].kind != model::TapKind::kFeature,
                "QuantConfig.bits_overrides: '", name, "' is not a weight or activation tap of ",
                model_->config().name);
  }
  if (config_.input_range == InputRange::kPixelBox) {
    const int id = model_->taps().Find(kInputTap);
    TORCH_CHECK(id >= 0 && taps[static_cast<size_t>(id)].kind == model::TapKind::kActivation,
                "QuantConfig.input_range = pixel_box: ", model_->config().name,
                " has no activation tap '", kInputTap, "'");
    // One per-tensor range over all channels: the lowest channel bound to the highest.
    auto [lo, hi] = model::NormalisedPixelRange(model_->config());
    pixel_box_ = {lo.min().item<double>(), hi.max().item<double>()};
  }
  for (size_t i = 0; i < taps.size(); ++i) {
    const int id = static_cast<int>(i);
    switch (taps[i].kind) {
      case model::TapKind::kWeight:
        weight_taps_.push_back(id);
        weight_quantizers_[i] = std::make_unique<MinMaxWeightQuantizer>(
            BitsFor(taps[i]), MakeGranularity(config_.weight_granularity));
        break;
      case model::TapKind::kActivation:
        activation_taps_.push_back(id);
        if (IsSoftmaxTap(taps[i].name) && config_.quantizer == QuantizerKind::kRepq) {
          activation_quantizers_[i] = std::make_unique<LogSqrt2Quantizer>(BitsFor(taps[i]));
        } else {
          activation_quantizers_[i] = std::make_unique<ActivationQuantizer>(BitsFor(taps[i]));
        }
        observers_[i] = MakeObserver(config_.act_observer);
        break;
      case model::TapKind::kFeature:
        break;
    }
  }
  if (config_.quantizer == QuantizerKind::kRepq) {
    for (FoldSite& site : FindFoldSites(*model_)) {
      const int id = model_->taps().Find(site.tap);
      if (!activation_quantizers_[static_cast<size_t>(id)]->enabled()) continue;
      const int64_t channels = model_->named_parameters()[site.norm + ".weight"].numel();
      observers_[static_cast<size_t>(id)] = std::make_unique<ChannelMinMaxObserver>(channels);
      fold_sites_.emplace_back(id, std::move(site));
    }
  }
}

QuantizedModel::~QuantizedModel() {
  if (model_->taps().observer() == this) model_->taps().Detach();
}

int QuantizedModel::BitsFor(const model::TapInfo& info) const {
  auto it = config_.bits_overrides.find(info.name);
  if (it != config_.bits_overrides.end()) return it->second;
  // PSAQ leaves the attention probabilities in float.
  if (IsSoftmaxTap(info.name) && config_.quantizer == QuantizerKind::kPsaq) return kBitsOff;
  return info.kind == model::TapKind::kWeight ? config_.weight_bits : config_.act_bits;
}

at::Tensor QuantizedModel::Forward(const at::Tensor& x) {
  // kFloat does not attach at all, so it is the float forward bit for bit.
  if (mode_ == Mode::kFloat) return model_->forward(x);
  model::ScopedTapObserver attach(model_->taps(), this, kTapMask);
  return model_->forward(x);
}

void QuantizedModel::SetMode(Mode mode) {
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

const model::TapInfo& QuantizedModel::tap(int id) const {
  const auto& taps = model_->taps().taps();
  TORCH_CHECK(id >= 0 && static_cast<size_t>(id) < taps.size(), "tap id ", id, " out of range");
  return taps[static_cast<size_t>(id)];
}

int QuantizedModel::TapId(const std::string& name) const {
  const int id = model_->taps().Find(name);
  TORCH_CHECK(id >= 0 && tap(id).kind != model::TapKind::kFeature, "'", name,
              "' is not a weight or activation tap of ", model_->config().name);
  return id;
}

const Quantizer& QuantizedModel::weight_quantizer(int id) const {
  TORCH_CHECK(tap(id).kind == model::TapKind::kWeight, "tap '", tap(id).name,
              "' is not a weight tap");
  return *weight_quantizers_[static_cast<size_t>(id)];
}

ActivationQuantizer& QuantizedModel::activation_quantizer(int id) {
  TORCH_CHECK(tap(id).kind == model::TapKind::kActivation, "tap '", tap(id).name,
              "' is not an activation tap");
  return *activation_quantizers_[static_cast<size_t>(id)];
}

const ActivationQuantizer& QuantizedModel::activation_quantizer(int id) const {
  return const_cast<QuantizedModel*>(this)->activation_quantizer(id);
}

RangeObserver& QuantizedModel::observer(int id) {
  TORCH_CHECK(tap(id).kind == model::TapKind::kActivation, "tap '", tap(id).name,
              "' is not an activation tap");
  return *observers_[static_cast<size_t>(id)];
}

const RangeObserver& QuantizedModel::observer(int id) const {
  return const_cast<QuantizedModel*>(this)->observer(id);
}

void QuantizedModel::ResetObservers() {
  for (int id : activation_taps_) observers_[static_cast<size_t>(id)]->Reset();
}

void QuantizedModel::ApplyObservedRanges() {
  std::string missing;
  for (int id : activation_taps_) {
    if (!observers_[static_cast<size_t>(id)]->initialized()) {
      missing += (missing.empty() ? "" : ", ") + tap(id).name;
    }
  }
  // All taps are checked before any range is set: a failed calibration changes nothing.
  TORCH_CHECK(missing.empty(), "calibration saw nothing at activation taps: ", missing,
              " (did the forward pass reach them?)");
  // RepQ: fold each post-LayerNorm point's channel scales into the model; its tap then
  // quantizes per tensor with the target grid.
  std::vector<bool> folded(activation_quantizers_.size(), false);
  for (const auto& [id, site] : fold_sites_) {
    const auto& observer =
        static_cast<const ChannelMinMaxObserver&>(*observers_[static_cast<size_t>(id)]);
    const ChannelFold fold =
        PlanChannelFold(observer.channel_min(), observer.channel_max(),
                        activation_quantizers_[static_cast<size_t>(id)]->bits());
    ApplyChannelFold(*model_, site, fold);
    activation_quantizers_[static_cast<size_t>(id)]->SetRange(fold.range_min, fold.range_max);
    folded[static_cast<size_t>(id)] = true;
  }
  for (int id : activation_taps_) {
    if (folded[static_cast<size_t>(id)]) continue;
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

void QuantizedModel::FreezeWeight(int id, const at::Tensor& codes, const at::Tensor& scale) {
  TORCH_CHECK(tap(id).kind == model::TapKind::kWeight, "FreezeWeight: tap '", tap(id).name,
              "' is not a weight tap");
  // The tap keeps its configured bit width; only where the grid comes from changes.
  const int bits = weight_quantizers_[static_cast<size_t>(id)]->bits();
  weight_quantizers_[static_cast<size_t>(id)] =
      std::make_unique<FrozenWeightQuantizer>(bits, codes, scale);
}

bool QuantizedModel::weight_frozen(int id) const {
  return dynamic_cast<const FrozenWeightQuantizer*>(&weight_quantizer(id)) != nullptr;
}

at::Tensor QuantizedModel::OnTap(int id, const model::TapInfo& info, const at::Tensor& x) {
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
