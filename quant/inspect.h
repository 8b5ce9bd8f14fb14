// Human-readable descriptions of the files psaq reads and writes, for `psaq inspect`.
//
//   - a float weights file (.safetensors with psaq/timm metadata, or a bare timm checkpoint):
//     architecture, config, preprocessing, parameter count, tensor count and bytes by dtype;
//   - a quantized export (quant/export.h): its metadata (bit widths, method, samples, version)
//     and, from its manifest, every quantization point with bits and range/scale, and a summary
//     of the per-channel weight scales.
//   - a detector (metadata "arch" = "mask_rcnn_swin"): a float detector's quantization points
//     under InspectOptions::quant and ::scope, or a detector export's own (bits, scope, ranges);
//     these are built from the file (the detector is small enough to load), so unlike the rest
//     the tensors ARE read and checked (LoadDetector / ImportQuantizedDetector).
// Otherwise only headers, metadata and the manifest are read (never the tensor data), so large files are
// described in milliseconds. What is shown is checked first (quant/export_check.h): the config
// (model::ConfigFromMetadata) and that it fits the file's tensors; for an export its bit widths,
// quant points and their tensors' names, dtypes and ranks, and the manifest against the export
// (same metadata and points, finite scales in range, min <= max). Tensor values are not read, so
// a NaN weight or scale is not seen: the description ends with a "checked" line saying so
// (psaq eval and quantize load the tensors and refuse non-finite values).
#pragma once

#include <string>

#include "quant/quant_config.h"
#include "quant/quantized_detector.h"

namespace psaq::quant {

struct InspectOptions {
  // Also list every tensor (name, dtype, shape, bytes) in file order. Default false.
  bool list_tensors = false;
  // For a quantized export, also list every quantization point (from the manifest). Default true.
  bool list_points = true;
  // A float detector file: the quantizer config and scope whose points are listed (a detector
  // export lists its own). Default W8/A8, all.
  QuantConfig quant;
  DetectorScope scope = DetectorScope::kAll;
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

// The table of a quantized detector's points: name, kind, bits ("float" at 32), in or out of its
// scope, and the activation range when calibrated.
std::string DescribeDetectorPoints(const QuantizedDetector& q);

}  // namespace psaq::quant
