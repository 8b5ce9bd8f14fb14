// RepQ-ViT's scale reparameterisation of post-LayerNorm activations (Li et al., ICCV 2023,
// §3.2; zkkli/RepQ-ViT classification/test_quant.py), the calibration half of
// QuantizerKind::kRepq (quant/quant_config.h).
//
// A LayerNorm's output x [..., C] varies strongly from channel to channel, so one per-tensor
// grid wastes most of its levels on a few wide channels. RepQ calibrates a per-channel grid
// (s_c, z_c) from per-channel ranges, then rewrites the model so that a single per-tensor grid
// (s, z) quantizes exactly as the per-channel grids did:
//   r_c = s_c / s,   β_c = (z_c - z) * s,   x'_c = x_c / r_c + β_c
// so x'_c / s + z = x_c / s_c + z_c (the same codes) and the next Linear sees
//   W' x' + b' = W x + b   with  W'[:, c] = W[:, c] * r_c,  b' = b - W' β.
// The LayerNorm produces x' directly: γ'_c = γ_c / r_c, β'_LN,c = β_LN,c / r_c + β_c.
// Inference stays per tensor and the model's float function is unchanged (exact in real
// arithmetic; float rounding only).
//
// Grids, as RepQ's UniformQuantizer, from per-channel ranges [min_c, max_c] (the channel's
// min/max, or its percentile search under ObserverKind::kPercentile, quant/percentile_observer.h):
//   s_c = (max_c - min_c) / (2^b - 1), floored at kChannelScaleFloor * mean(s_c) (a constant
//         channel would otherwise get r_c ~ 0 and an infinite LayerNorm weight);
//   z_c = round(-min_c / s_c)        (not clamped: a channel away from 0 keeps all its levels);
//   s   = mean(s_c),  z = clamp(round(mean(z_c)), 0, 2^b - 1)   (RepQ keeps mean(z_c) unrounded;
//         psaq's grids have integer zero points, and any z keeps the identity above exact).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

#include "model/vision_model.h"

namespace psaq::quant {

// Channel scales below this fraction of the mean channel scale are raised to it.
inline constexpr double kChannelScaleFloor = 1e-3;

// One post-LayerNorm activation RepQ reparameterises.
struct FoldSite {
  std::string tap;     // the activation tap of the LayerNorm's output, e.g. "blocks.0.norm1.out"
  std::string norm;    // the LayerNorm's module path ("blocks.0.norm1"): "<norm>.weight"/".bias"
  std::string linear;  // the Linear reading it ("blocks.0.attn.qkv"): "<linear>.weight"/".bias"
};

// The fold sites of `model`, in forward order: every activation tap "<p>norm1.out" (read by
// "<p>attn.qkv") and "<p>norm2.out" (read by "<p>mlp.fc1"), and "<p>norm.out" of a patch merging
// (read by "<p>reduction") when that Linear has a bias. Swin's reduction has none (timm), and the
// shift β needs one, so its input stays per tensor (docs/quantizers.md).
std::vector<FoldSite> FindFoldSites(const model::VisionModel& model);

// The reparameterisation of one site, float64 CPU.
struct ChannelFold {
  at::Tensor ratio;        // r [C]
  at::Tensor shift;        // β [C]
  double scale = 0;        // s, the per-tensor scale
  int64_t zero_point = 0;  // z
  // The per-tensor range whose asymmetric grid (quant/uniform.h) is (s, z):
  // [-z s, (2^b - 1 - z) s].
  double range_min = 0;
  double range_max = 0;
};

// The LayerNorm-affine prior (FoldPrior::kLayerNorm): a post-LayerNorm channel is
// y_c = γ_c x̂_c + β_c, where the LayerNorm has put every channel's x̂_c on one scale, so the
// variation between channels' ranges is mostly γ and β (RepQ-ViT's premise). Synthetic samples
// reach a wide x̂ in a few channels and a narrow one in most (the shipped Swin's V2 samples: ranges
// 2-3x narrower than real images', 5-11% of real activations clipped; docs/quantizers.md). The
// prior gives every channel the widest normalised reach seen in any channel of the point,
//   k = max over c with |γ_c| > 1e-6 max|γ| of max(|min_c - β_c|, |max_c - β_c|) / |γ_c|,
// and returns [min(min_c, β_c - k|γ_c|), max(max_c, β_c + k|γ_c|)] (so never narrower than
// observed). γ, β: the LayerNorm's current weight and bias [C] (after earlier folds: they describe
// the point's current output, so the rule composes with V2's repeated folds). float64 CPU
// results. REQUIRES: four [C] tensors, finite, min <= max (TORCH_CHECK).
std::pair<at::Tensor, at::Tensor> WidenToLayerNormPrior(const at::Tensor& channel_min,
                                                        const at::Tensor& channel_max,
                                                        const at::Tensor& gamma,
                                                        const at::Tensor& beta);

// channel_min, channel_max: float64 [C], finite, min <= max. REQUIRES: 2 <= bits <= 8.
ChannelFold PlanChannelFold(const at::Tensor& channel_min, const at::Tensor& channel_max, int bits);

// Rewrites the site's LayerNorm and Linear parameters in place (outside autograd, keeping each
// parameter's tensor, dtype and device). Throws c10::Error when a parameter is missing or its
// size is not C.
void ApplyChannelFold(model::VisionModel& model, const FoldSite& site, const ChannelFold& fold);

}  // namespace psaq::quant
