// Checks on a quantized export (quant/export.h) shared by its reader (import.cc) and psaq inspect:
// each throws std::runtime_error("<path>: <reason>") naming the tensor or point at fault.
#pragma once

#include <ATen/core/Tensor.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/safetensors.h"

namespace psaq::quant {

// The bit width written as `text` (an export's metadata or quant point), read by BitsFromText
// (quant/quantizer.h: digits only): kMinBits..kMaxBits or kBitsOff. Throws
// "<path>: <what> = '<text>' is not a bit width (2..8 or 32)" otherwise.
int ParseBits(const std::string& text, const std::string& what, const std::string& path);

// Every element of `scales` must be a finite, positive scale in [kMinScale, kMaxScale]
// (quant/export_format.h). Throws "<path>: tensor '<name>' holds a non-finite or non-positive
// scale" or "<path>: tensor '<name>' holds scales in [<min>, <max>], outside psaq's range
// [1.192e-07, 1e+08]".
void CheckScaleRange(const at::Tensor& scales, const std::string& name, const std::string& path);

// The model `config` describes must not be far larger than the export's tensors (codes, floats
// and scales together; model::CheckConfigFitsFile). Called before the model is built.
void CheckModelFitsExport(const model::ModelConfig& config, const model::SafetensorsFile& file);

// One entry of the export's "quant_points" metadata.
struct ExportPoint {
  std::string name;
  std::string kind;  // export_format::kWeightKind | kActivationKind
  int bits = 0;      // IsValidBits (quant/quantizer.h)
};

// What psaq inspect checks of an export without reading tensor data: its metadata and the names,
// dtypes and shapes of its tensors (`header` from model::ReadSafetensorsHeader). Returns the quant
// points; throws "<path>: <reason>" for
//   - a format_version or weight_storage this reader does not know;
//   - w_bits, a_bits or a quant point's bits that is not a bit width (2..8, or 32 for off);
//   - an unknown weight_granularity, act_observer or input_range;
//   - quant_points that is not a JSON array of {"name", "kind": "weight"|"activation", "bits"}
//     (nesting beyond model::kMaxJsonDepth refused before parsing), or repeats a name;
//   - a quantized point without its tensors: "<w>" I8 and "<w>.scale" F32 [C] for a weight below
//     32 bits, "act.<a>.range" F32 [2], ".scale" and ".zero_point" F32 for an activation.
// The model's taps are not built, so the points are not matched against them (the reader does).
std::vector<ExportPoint> CheckExportHeader(const model::SafetensorsFile& header);

// The manifest beside an export must describe that export and hold sane values. Throws
// "<manifest_path>: <reason>" when
//   - it is not an object with a "points" array;
//   - a metadata entry of the export (all but quant_points) is missing from it or different
//     ("config" and "preprocess" compared as JSON): the manifest of another export;
//   - its points differ from `points` in number, order, name, kind or bits;
//   - a weight point's shape differs from the tensor's, or (below 32 bits) its channel count from
//     the scale tensor's, or its scale_min/mean/max are not scales in [kMinScale, kMaxScale] with
//     min <= mean <= max;
//   - an activation point's range is not finite with min <= max, or (below 32 bits) its scale is
//     outside [kMinScale, kMaxScale] or its zero point outside [0, 2^bits - 1].
void CheckManifest(const nlohmann::json& manifest, const model::SafetensorsFile& header,
                   const std::vector<ExportPoint>& points, const std::string& manifest_path);

}  // namespace psaq::quant
