// Names and constants of the quantized-export format shared by the writer and the reader
// (quant/export.h documents the format itself).
#pragma once

#include <string>

namespace psaq::quant::export_format {

inline constexpr const char* kFormat = "psaq_quantized";
inline constexpr const char* kFormatVersion = "1";
inline constexpr const char* kWeightStorage = "int8";

// "<param>.scale": per-channel scales of an integer weight.
inline std::string ScaleName(const std::string& param) { return param + ".scale"; }
// "act.<tap>.<field>" with field "range", "scale" or "zero_point".
inline std::string ActName(const std::string& tap, const char* field) {
  return "act." + tap + "." + field;
}

// "weight" / "activation" in quant_points and the manifest.
inline constexpr const char* kWeightKind = "weight";
inline constexpr const char* kActivationKind = "activation";

}  // namespace psaq::quant::export_format
