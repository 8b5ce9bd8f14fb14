// Human-readable descriptions of the files psaq reads and writes, for `psaq inspect`.
//
//   - a float weights file (.safetensors with psaq/timm metadata, or a bare timm checkpoint):
//     architecture, config, preprocessing, parameter count, tensor count and bytes by dtype;
//   - a quantized export (quant/export.h): its metadata (bit widths, method, samples, version)
//     and, from its manifest, every quantization point with bits and range/scale, and a summary
//     of the per-channel weight scales.
// Only headers, metadata and the manifest are read (never the tensor data), so large files are
// described in milliseconds. What is shown is checked first (quant/export_check.h): the config
// (model::ConfigFromMetadata) and that it fits the file's tensors; for an export its bit widths,
// quant points and their tensors' names, dtypes and ranks, and the manifest against the export
// (same metadata and points, finite scales in range, min <= max). Tensor values are not read, so
// a NaN weight or scale is not seen: the description ends with a "checked" line saying so
// (psaq eval and quantize load the tensors and refuse non-finite values).
#pragma once

#include <string>

namespace psaq::quant {

struct InspectOptions {
  // Also list every tensor (name, dtype, shape, bytes) in file order. Default false.
  bool list_tensors = false;
  // For a quantized export, also list every quantization point (from the manifest). Default true.
  bool list_points = true;
};

// What a file is, judged from its metadata.
enum class InspectedKind { kWeights, kQuantizedExport };

// Reads the header of `path` and tells which kind of file it is. Throws model::SafetensorsError
// ("<path>: <reason>") for a missing or malformed file.
InspectedKind KindOfFile(const std::string& path);

// The description of `path` (see above), lines ending in '\n'. Throws model::SafetensorsError
// for a missing, non-regular or malformed file, std::runtime_error("<path>: <reason>") for invalid
// psaq metadata (an unknown arch, a config psaq cannot build or that describes more than the
// file's tensors, an export's bits or points; quant/export_check.h CheckExportHeader), and
// std::runtime_error("<manifest>: <reason>") for a manifest that is not a regular file, is
// invalid, or disagrees with the export (CheckManifest).
std::string InspectFile(const std::string& path, const InspectOptions& options = {});

}  // namespace psaq::quant
