// What to quantize and how: the one config struct of quant/ (docs/psaq_spec.md §3).
#pragma once

#include <map>
#include <string>

#include "quant/granularity.h"
#include "quant/quantizer.h"
#include "quant/range_observer.h"

namespace psaq::quant {

// Where the quantizer of the input image (activation tap "input") takes its range from.
enum class InputRange {
  kCalibrated,  // the calibration images' min/max, as every other activation (PSAQ)
  kPixelBox,    // the model's normalised pixel box (model/data/preprocess.h NormalisedPixelRange,
                // min and max over channels): every valid image lies inside it, however dim or
                // bright the calibration images are
};

// "calibrated" | "pixel_box". ParseInputRange throws std::invalid_argument for another name.
std::string InputRangeName(InputRange range);
InputRange ParseInputRange(const std::string& name);

// Which quantization method: PSAQ-ViT's (every activation per tensor, post-softmax attention in
// float) or RepQ-ViT's scale reparameterisation on top of it (quant/repq_fold.h): each
// post-LayerNorm activation is observed per channel and the channel scales are folded into the
// LayerNorm affine and the next Linear, so inference stays per tensor, and the post-softmax
// attention is quantized with a log-sqrt(2) grid (quant/log_sqrt2_quantizer.h).
enum class QuantizerKind {
  kPsaq,
  kRepq,
};

// "psaq" | "repq". ParseQuantizerKind throws std::invalid_argument for another name.

// Where kRepq's per-channel ranges at a folded post-LayerNorm point come from.
enum class FoldPrior {
  kNone,       // the observed ranges (min/max or percentile search), as RepQ-ViT
  kLayerNorm,  // the observed ranges widened to the LayerNorm-affine prior
               // (quant/repq_fold.h WidenToLayerNormPrior): for synthetic samples, whose
               // channels span less than real images' (docs/quantizers.md)
};

// "none" | "layernorm". ParseFoldPrior throws std::invalid_argument for another name.
std::string FoldPriorName(FoldPrior prior);
FoldPrior ParseFoldPrior(const std::string& name);
std::string QuantizerKindName(QuantizerKind kind);
QuantizerKind ParseQuantizerKind(const std::string& name);

// The per-point bit widths of QuantConfig::bits_overrides as text: "NAME=BITS" pairs joined by
// commas, e.g. "input=8,head.weight=8" ("" = none). ParseBitsOverrides throws
// std::invalid_argument naming the pair for a missing '=', an empty name, a bit width that is not
// an integer in 2..8 or 32, or a name given twice. Whether a name is a tap of the model is checked
// when the quantizers are built (quant/tap_quantizers.h).
std::map<std::string, int> ParseBitsOverrides(const std::string& text);
std::string BitsOverridesName(const std::map<std::string, int>& overrides);

// The activation observer each method calibrates with unless one is chosen (psaq quantize's
// --act_observer left empty): kMinMax for kPsaq (PSAQ's QuantAct), kPercentile for kRepq
// (RepQ-ViT's percentile search, quant/percentile_observer.h).
ObserverKind DefaultObserver(QuantizerKind quantizer);

struct QuantConfig {
  // Bits of every weight tap (Linear and Conv weights, including patch embed and head), 2..8,
  // or 32 = weights stay float. Default 8 (PSAQ's --w_bit); 4 for the W4/A8 setting.
  int weight_bits = 8;

  // Bits of every activation tap (input image, every activation point, pos_embed, Swin's bias
  // table, logits), 2..8, or 32 = activations stay float. Default 8 (PSAQ's --a_bit).
  int act_bits = 8;

  // How weights are grouped under one scale. Default per output channel, as PSAQ.
  GranularityKind weight_granularity = GranularityKind::kPerChannel;

  // How activation ranges are estimated during calibration. Default the running min/max of the
  // float activations, as PSAQ; kPercentile is RepQ-ViT's percentile search
  // (quant/percentile_observer.h), per channel at kRepq's folded points; kMse continues that
  // search over a dense set of clipping tails (the same file). A config that sets
  // quantizer = kRepq sets this too (DefaultObserver) unless it means RepQ with min/max ranges.
  ObserverKind act_observer = ObserverKind::kMinMax;

  // Per-tap bit widths that replace weight_bits / act_bits, keyed by tap name (a weight tap's
  // parameter name or an activation tap's name, e.g. {"head.weight", 8} to keep an 8-bit head
  // at W4). Default empty. A name that is not a tap of the model is an error.
  std::map<std::string, int> bits_overrides;

  // The input quantizer's range. Default kCalibrated (PSAQ). With kPixelBox, synthetic samples
  // that are dimmer than real images (docs/results.md, "Calibration images at the model's
  // input") no longer clip the real images' pixels at the first quantization point.
  InputRange input_range = InputRange::kCalibrated;

  // The quantization method. Default kPsaq (the paper's numbers stay comparable); kRepq for
  // 4-bit activations (docs/quantizers.md).
  QuantizerKind quantizer = QuantizerKind::kPsaq;

  // kRepq only: the per-channel ranges its folds use. Default kNone (RepQ-ViT's).
  FoldPrior fold_prior = FoldPrior::kNone;
};

// Throws c10::Error (TORCH_CHECK) naming the field for a bit width outside 2..8 and 32, and for
// a fold_prior other than kNone without quantizer kRepq.
void ValidateQuantConfig(const QuantConfig& config);

// "W4A8"-style label, then " with " and BitsOverridesName when bits_overrides is non-empty (as
// the quantize summary names them), ", pixel-box input" for InputRange::kPixelBox, then
// DescribeQuantMethod.
std::string DescribeQuantConfig(const QuantConfig& config);

// The method's part of a label: ", repq" for QuantizerKind::kRepq, ", percentile ranges" for
// ObserverKind::kPercentile (", mse ranges" for kMse), ", layernorm prior" for
// FoldPrior::kLayerNorm, in that order; empty for PSAQ's own (psaq, min/max). Also the summary
// line of psaq quantize (launch/job_command.cc).
std::string DescribeQuantMethod(const QuantConfig& config);

}  // namespace psaq::quant
