#include "quant/quant_config.h"

#include <c10/util/Exception.h>

#include <stdexcept>

namespace psaq::quant {

std::string InputRangeName(InputRange range) {
  return range == InputRange::kPixelBox ? "pixel_box" : "calibrated";
}

InputRange ParseInputRange(const std::string& name) {
  if (name == "calibrated") return InputRange::kCalibrated;
  if (name == "pixel_box") return InputRange::kPixelBox;
  throw std::invalid_argument("unknown input range '" + name + "' (calibrated, pixel_box)");
}

std::string QuantizerKindName(QuantizerKind kind) {
  return kind == QuantizerKind::kRepq ? "repq" : "psaq";
}

QuantizerKind ParseQuantizerKind(const std::string& name) {
  if (name == "psaq") return QuantizerKind::kPsaq;
  if (name == "repq") return QuantizerKind::kRepq;
  throw std::invalid_argument("unknown quantizer '" + name + "' (psaq, repq)");
}

std::string FoldPriorName(FoldPrior prior) {
  return prior == FoldPrior::kLayerNorm ? "layernorm" : "none";
}

FoldPrior ParseFoldPrior(const std::string& name) {
  if (name == "none") return FoldPrior::kNone;
  if (name == "layernorm") return FoldPrior::kLayerNorm;
  throw std::invalid_argument("unknown fold prior '" + name + "' (none, layernorm)");
}

ObserverKind DefaultObserver(QuantizerKind quantizer) {
  return quantizer == QuantizerKind::kRepq ? ObserverKind::kPercentile : ObserverKind::kMinMax;
}

void ValidateQuantConfig(const QuantConfig& config) {
  TORCH_CHECK(IsValidBits(config.weight_bits), "QuantConfig.weight_bits must be ", kMinBits, "..",
              kMaxBits, " or ", kBitsOff, ", got ", config.weight_bits);
  TORCH_CHECK(IsValidBits(config.act_bits), "QuantConfig.act_bits must be ", kMinBits, "..",
              kMaxBits, " or ", kBitsOff, ", got ", config.act_bits);
  TORCH_CHECK(config.fold_prior == FoldPrior::kNone || config.quantizer == QuantizerKind::kRepq,
              "QuantConfig.fold_prior = ", FoldPriorName(config.fold_prior),
              " applies to quantizer repq only (it has no folded points)");
  for (const auto& [name, bits] : config.bits_overrides) {
    TORCH_CHECK(IsValidBits(bits), "QuantConfig.bits_overrides[\"", name, "\"] must be ", kMinBits,
                "..", kMaxBits, " or ", kBitsOff, ", got ", bits);
  }
}

std::string DescribeQuantConfig(const QuantConfig& config) {
  std::string label =
      "W" + std::to_string(config.weight_bits) + "A" + std::to_string(config.act_bits);
  if (!config.bits_overrides.empty()) {
    label += " +" + std::to_string(config.bits_overrides.size()) + " overrides";
  }
  if (config.input_range == InputRange::kPixelBox) label += ", pixel-box input";
  return label + DescribeQuantMethod(config);
}

std::string DescribeQuantMethod(const QuantConfig& config) {
  std::string label;
  if (config.quantizer == QuantizerKind::kRepq) label += ", repq";
  if (config.act_observer == ObserverKind::kPercentile) label += ", percentile ranges";
  if (config.act_observer == ObserverKind::kMse) label += ", mse ranges";
  if (config.fold_prior == FoldPrior::kLayerNorm) label += ", layernorm prior";
  return label;
}

}  // namespace psaq::quant
