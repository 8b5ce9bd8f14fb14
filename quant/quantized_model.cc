#include "quant/quantized_model.h"

#include <c10/util/Exception.h>

#include <tuple>
#include <utility>

#include "model/data/preprocess.h"
#include "quant/channel_range_observer.h"
#include "quant/percentile_observer.h"

namespace psaq::quant {
namespace {

// The base is built before any member: check the model first.
model::VisionModel& Checked(const model::ModelPtr& model) {
  TORCH_CHECK(model != nullptr, "QuantizedModel: null model");
  return *model;
}

// One per-tensor range over all channels: the lowest channel bound to the highest.
std::pair<double, double> PixelBox(const model::VisionModel& model, const QuantConfig& config) {
  if (config.input_range != InputRange::kPixelBox) return {0, 0};
  auto [lo, hi] = model::NormalisedPixelRange(model.config());
  return {lo.min().item<double>(), hi.max().item<double>()};
}

}  // namespace

QuantizedModel::QuantizedModel(model::ModelPtr model, QuantConfig config)
    // Every argument goes through Checked: their evaluation order is unspecified.
    : TapQuantizers(Checked(model).taps(), Checked(model), Checked(model).config().name,
                    PixelBox(Checked(model), config), config),
      model_(std::move(model)) {
  if (this->config().quantizer == QuantizerKind::kRepq) {
    for (FoldSite& site : FindFoldSites(*model_)) {
      const int id = model_->taps().Find(site.tap);
      if (!activation_quantizer(id).enabled()) continue;
      const int64_t channels = model_->named_parameters()[site.norm + ".weight"].numel();
      const ObserverKind kind = this->config().act_observer;
      if (kind == ObserverKind::kPercentile || kind == ObserverKind::kMse) {
        ReplaceObserver(id, std::make_unique<PercentileObserver>(
                                channels, activation_quantizer(id).bits(),
                                ActivationGrid::kUniform, kind));
      } else {
        ReplaceObserver(id, std::make_unique<ChannelMinMaxObserver>(channels));
      }
      fold_sites_.emplace_back(id, std::move(site));
    }
  }
}

QuantizedModel::~QuantizedModel() { DetachFromTaps(); }

at::Tensor QuantizedModel::Forward(const at::Tensor& x) {
  // kFloat does not attach at all, so it is the float forward bit for bit.
  if (mode() == Mode::kFloat) return model_->forward(x);
  model::ScopedTapObserver attach(model_->taps(), this, kTapMask);
  return model_->forward(x);
}

void QuantizedModel::FoldRanges(std::vector<bool>& handled) {
  // RepQ: fold each post-LayerNorm point's channel scales into the model; its tap then
  // quantizes per tensor with the target grid.
  for (const auto& [id, site] : fold_sites_) {
    const auto* channels = dynamic_cast<const ChannelRangeSource*>(&observer(id));
    TORCH_CHECK(channels != nullptr, "RepQ fold at '", tap(id).name,
                "': its observer has no per-channel ranges");
    at::Tensor lo = channels->channel_min();
    at::Tensor hi = channels->channel_max();
    if (config().fold_prior == FoldPrior::kLayerNorm) {
      auto params = model_->named_parameters();
      std::tie(lo, hi) = WidenToLayerNormPrior(lo, hi, params[site.norm + ".weight"],
                                               params[site.norm + ".bias"]);
    }
    const ChannelFold fold = PlanChannelFold(lo, hi, activation_quantizer(id).bits());
    ApplyChannelFold(*model_, site, fold);
    activation_quantizer(id).SetRange(fold.range_min, fold.range_max);
    handled[static_cast<size_t>(id)] = true;
  }
}

}  // namespace psaq::quant
