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

std::map<std::string, int> ParseBitsOverrides(const std::string& text) {
  std::map<std::string, int> overrides;
  if (text.empty()) return overrides;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string pair =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const size_t eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw std::invalid_argument("'" + pair + "' is not NAME=BITS (a quantization point's name, "
                                  "'=', its bit width)");
    }
    const std::string name = pair.substr(0, eq);
    const std::string bits_text = pair.substr(eq + 1);
    const std::optional<int> bits = BitsFromText(bits_text);
    if (!bits) {
      throw std::invalid_argument("'" + pair + "': the bit width must be " +
                                  std::to_string(kMinBits) + ".." + std::to_string(kMaxBits) +
                                  " or " + std::to_string(kBitsOff));
    }
    if (!overrides.emplace(name, *bits).second) {
      throw std::invalid_argument("'" + name + "' is given twice");
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return overrides;
}

std::string BitsOverridesName(const std::map<std::string, int>& overrides) {
  std::string text;
  for (const auto& [name, bits] : overrides) {
    if (!text.empty()) text += ",";
    text += name + "=" + std::to_string(bits);
  }
  return text;
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
    label += " with " + BitsOverridesName(config.bits_overrides);
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
