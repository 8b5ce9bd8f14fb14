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

// The range of scales an export may hold, weight per-channel scales and activation scales alike;
// the reader and psaq inspect refuse anything outside it (NaN included).
//   - kMinScale = 2^-23 (float32 epsilon): psaq never writes a smaller scale (quant/uniform.h
//     clamps every scale to it), and 1e-45 is a float32 denormal, not a step;
//   - kMaxScale = 1e8: steps that large would mean weights or activations beyond ~1e10 (8-bit
//     codes), where attention's products leave float32's range; real ViT scales are below 1e3.
inline constexpr double kMinScale = 1.0 / (1 << 23);
inline constexpr double kMaxScale = 1e8;
inline bool IsSaneScale(double scale) { return scale >= kMinScale && scale <= kMaxScale; }

// A detector export's metadata: its quantization scope (quant/quantized_detector.h
// DetectorScopeName). Its "arch" is the detector's (model/detect/detector_config.h).
inline constexpr const char* kQuantScopeKey = "quant_scope";

// "weight" / "activation" in quant_points and the manifest.
inline constexpr const char* kWeightKind = "weight";
inline constexpr const char* kActivationKind = "activation";

}  // namespace psaq::quant::export_format
