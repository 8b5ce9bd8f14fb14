#include "quant/repq_fold.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>

#include "quant/uniform.h"

namespace psaq::quant {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

at::Tensor Param(model::VisionModel& model, const std::string& name) {
  const auto params = model.named_parameters();
  const at::Tensor* p = params.find(name);
  TORCH_CHECK(p != nullptr, "RepQ fold: the model has no parameter '", name, "'");
  return *p;  // shares the parameter's storage
}

}  // namespace

std::vector<FoldSite> FindFoldSites(const model::VisionModel& model) {
  const auto params = model.named_parameters();
  std::vector<FoldSite> sites;
  for (const model::TapInfo& tap : model.taps().taps()) {
    if (tap.kind != model::TapKind::kActivation) continue;
    // Which Linear reads each kind of LayerNorm output (model/vit_block, swin_block,
    // patch_merging).
    static const std::pair<const char*, const char*> kReaders[] = {
        {"norm1.out", "attn.qkv"}, {"norm2.out", "mlp.fc1"}, {"norm.out", "reduction"}};
    for (const auto& [suffix, reader] : kReaders) {
      const std::string s = suffix;
      if (!EndsWith(tap.name, s) ||
          (tap.name.size() > s.size() && tap.name[tap.name.size() - s.size() - 1] != '.')) {
        continue;
      }
      const std::string prefix = tap.name.substr(0, tap.name.size() - s.size());
      FoldSite site{tap.name, prefix + s.substr(0, s.size() - 4), prefix + reader};
      if (params.find(site.linear + ".bias") != nullptr &&
          params.find(site.norm + ".weight") != nullptr &&
          params.find(site.norm + ".bias") != nullptr) {
        sites.push_back(site);
      }
    }
  }
  return sites;
}

std::pair<at::Tensor, at::Tensor> WidenToLayerNormPrior(const at::Tensor& channel_min,
                                                        const at::Tensor& channel_max,
                                                        const at::Tensor& gamma,
                                                        const at::Tensor& beta) {
  const int64_t c = channel_min.numel();
  TORCH_CHECK(channel_min.dim() == 1 && c > 0 && channel_max.sizes() == channel_min.sizes() &&
                  gamma.numel() == c && beta.numel() == c,
              "LayerNorm prior: four [C] tensors expected, got ", channel_min.sizes(), ", ",
              channel_max.sizes(), ", ", gamma.sizes(), ", ", beta.sizes());
  at::NoGradGuard no_grad;
  const at::Tensor lo = channel_min.detach().to(at::kDouble).cpu();
  const at::Tensor hi = channel_max.detach().to(at::kDouble).cpu();
  const at::Tensor g = gamma.detach().to(at::kDouble).cpu().reshape({c}).abs();
  const at::Tensor b = beta.detach().to(at::kDouble).cpu().reshape({c});
  TORCH_CHECK(lo.isfinite().all().item<bool>() && hi.isfinite().all().item<bool>() &&
                  (lo <= hi).all().item<bool>() && g.isfinite().all().item<bool>() &&
                  b.isfinite().all().item<bool>(),
              "LayerNorm prior: ranges and parameters must be finite with min <= max");
  // Channels with a (near-)zero γ are constant: they say nothing about the normalised reach.
  const at::Tensor live = g > 1e-6 * g.max().item<double>();
  if (!live.any().item<bool>()) return {lo, hi};
  const at::Tensor reach = at::maximum((lo - b).abs(), (hi - b).abs()) / g.clamp_min(1e-300);
  const double k = reach.masked_select(live).max().item<double>();
  return {at::minimum(lo, b - k * g), at::maximum(hi, b + k * g)};
}

ChannelFold PlanChannelFold(const at::Tensor& channel_min, const at::Tensor& channel_max,
                            int bits) {
  TORCH_CHECK(channel_min.dim() == 1 && channel_min.sizes() == channel_max.sizes() &&
                  channel_min.numel() > 0,
              "RepQ fold: channel ranges must be two [C] tensors, got ", channel_min.sizes(),
              " and ", channel_max.sizes());
  const at::Tensor lo = channel_min.to(at::kDouble).cpu();
  const at::Tensor hi = channel_max.to(at::kDouble).cpu();
  TORCH_CHECK(lo.isfinite().all().item<bool>() && hi.isfinite().all().item<bool>() &&
                  (lo <= hi).all().item<bool>(),
              "RepQ fold: channel ranges must be finite with min <= max");
  const double qmax = static_cast<double>(AsymmetricQMax(bits));
  at::Tensor s_c = (hi - lo) / qmax;
  const double floor =
      std::max(static_cast<double>(kScaleEps), kChannelScaleFloor * s_c.mean().item<double>());
  s_c = s_c.clamp_min(floor);
  const at::Tensor z_c = at::round(-lo / s_c);

  ChannelFold fold;
  fold.scale = s_c.mean().item<double>();
  fold.zero_point =
      static_cast<int64_t>(std::clamp(std::nearbyint(z_c.mean().item<double>()), 0.0, qmax));
  fold.ratio = s_c / fold.scale;
  fold.shift = (z_c - static_cast<double>(fold.zero_point)) * fold.scale;
  fold.range_min = -static_cast<double>(fold.zero_point) * fold.scale;
  fold.range_max = (qmax - static_cast<double>(fold.zero_point)) * fold.scale;
  return fold;
}

void ApplyChannelFold(model::VisionModel& model, const FoldSite& site, const ChannelFold& fold) {
  at::NoGradGuard no_grad;
  at::Tensor gamma = Param(model, site.norm + ".weight");     // [C]
  at::Tensor beta = Param(model, site.norm + ".bias");        // [C]
  at::Tensor weight = Param(model, site.linear + ".weight");  // [out, C]
  at::Tensor bias = Param(model, site.linear + ".bias");      // [out]
  const int64_t c = fold.ratio.numel();
  TORCH_CHECK(gamma.numel() == c && beta.numel() == c && weight.dim() == 2 && weight.size(1) == c,
              "RepQ fold at '", site.tap, "': ", c, " channel factors for ", site.norm,
              " of width ", gamma.numel(), " and ", site.linear, " of shape ", weight.sizes());
  // In float64, then rounded once to each parameter's dtype.
  const at::Tensor r = fold.ratio.to(gamma.device());
  const at::Tensor shift = fold.shift.to(gamma.device());
  const at::Tensor new_weight = weight.to(at::kDouble) * r.unsqueeze(0);
  const at::Tensor new_bias = bias.to(at::kDouble) - at::mv(new_weight, shift);
  gamma.copy_(gamma.to(at::kDouble) / r);
  beta.copy_(beta.to(at::kDouble) / r + shift);
  weight.copy_(new_weight);
  bias.copy_(new_bias);
}

}  // namespace psaq::quant
