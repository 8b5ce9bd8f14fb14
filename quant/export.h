// Export and import of a quantized model: one safetensors file plus a JSON manifest beside it.
//
// Storage format ("psaq_quantized" version 1). Weights are stored as ONE SIGNED int8 CODE PER
// ELEMENT for every bit width (no 4-bit packing: simple, mmap-friendly, and the bit width is
// recorded so a packer can be added without changing the reader's checks). Tensors:
//   "<param>"                I8  [weight shape]  integer codes q, for each weight tap below 32 bits
//   "<param>.scale"          F32 [C]             per-output-channel scales s (Ŵ = q * s)
//   "<param>"                F32                 every other parameter and persistent buffer, as
//                                                float (biases, LayerNorm, cls_token, pos_embed,
//                                                Swin's bias tables, weights at 32 bits); they are
//                                                quantized at run time by their activation taps
//   "act.<tap>.range"        F32 [2]             calibrated [min, max] of each activation tap
//   "act.<tap>.scale"        F32 []              its scale   } derived from the range; the reader
//   "act.<tap>.zero_point"   F32 []              its z       } recomputes and checks them
// Metadata (all strings): "arch", "config", "preprocess" (model::ConfigToMetadata); "format" =
// "psaq_quantized"; "format_version" = "1"; "weight_storage" = "int8"; "w_bits", "a_bits";
// "weight_granularity"; "act_observer"; "input_range" (quant/quant_config.h InputRangeName; a
// file without it reads as "calibrated"); "quantizer" (QuantizerKindName; absent reads as
// "psaq"); "quant_points" = JSON array of {"name", "kind" ("weight" | "activation"), "bits"} in
// forward order (per-tap bits live here), plus "quantizer": "log_sqrt2" on a point quantized by
// quant/log_sqrt2_quantizer.h (its stored range is [0, Δ]; absent = uniform); "method";
// "num_samples"; "psaq_version"; "tool"; "created" (UTC, ISO 8601).
// Under repq the reparameterised LayerNorm and Linear parameters are simply the stored
// parameters (quant/repq_fold.h): nothing else is needed to reload them.
// A psaq export written before the post-softmax taps existed (model/tap.h kSoftmaxPoint) lacks
// those points; it reads with them at 32 bits, as it was quantized.
// A detector export (ExportQuantizedDetector) is the same format over the detector's taps and
// state dict (mmdetection's names): its "arch"/"config" are the detector's
// (detect::DetectorConfigToMetadata, arch "mask_rcnn_swin"), plus "quant_scope" (backbone |
// backbone_neck | all); the points outside the scope are listed at 32 bits. No "preprocess".
// Manifest "<dir>/<stem>.manifest.json": the same metadata plus, per quantization point in
// forward order, its kind, bits, and range/scale/zero point (activations) or shape and
// per-channel scale min/mean/max (weights).
//
// Import rebuilds the model from the metadata and the stored codes and scales directly (frozen
// weight quantizers, quant/weight_quantizer.h), so its outputs are bit-identical to the exported
// in-memory model's on the same input.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "quant/quantized_detector.h"
#include "quant/quantized_model.h"

namespace psaq::quant {

struct ExportOptions {
  // How the calibration data was made: "psaq_v1" | "psaq_v2" | "noise" | "real" (any label is
  // accepted and recorded). Default "psaq_v1".
  std::string method = "psaq_v1";
  // Number of calibration samples used (recorded). Default 0 = unknown.
  int64_t num_samples = 0;
  // Name of the program that wrote the file (recorded). Default "psaq".
  std::string tool = "psaq";
};

// "<dir>/<stem>.manifest.json" for "<dir>/<stem>.safetensors" (or "<path>.manifest.json" when the
// path has no .safetensors extension).
std::string ManifestPath(const std::string& safetensors_path);

// Writes `path` and ManifestPath(path) (each atomically). The weight codes are taken from the
// model's current weights (or its frozen codes). REQUIRES: float32 model parameters and every
// enabled activation quantizer calibrated (TORCH_CHECK). Throws std::runtime_error naming the
// file on an I/O error.
void ExportQuantizedModel(const QuantizedModel& model, const std::string& path,
                          const ExportOptions& options = {});

// The same for a quantized detector (see above). REQUIRES and throws as ExportQuantizedModel.
void ExportQuantizedDetector(const QuantizedDetector& detector, const std::string& path,
                             const ExportOptions& options = {});

struct ImportedModel {
  std::unique_ptr<QuantizedModel> model;        // in Mode::kQuantized, weights frozen
  std::map<std::string, std::string> metadata;  // the file's metadata, as written
};

// Reads an export and rebuilds the quantized model (on the CPU, float32). Throws
// std::runtime_error("<path>: <problem>") for anything missing or inconsistent: not a psaq
// export, metadata missing or invalid (bits out of range, unknown granularity, quant points that
// do not match the model's taps), a config that describes a far larger model than the file's
// tensors (checked before the model is built), a missing or unexpected tensor, a wrong dtype or shape, an
// integer code outside its bit width, a weight or activation scale outside [kMinScale, kMaxScale]
// = [2^-23, 1e8] (quant/export_format.h; NaN and Inf included), activation scale/zero point that
// do not match the stored range, or float tensors holding NaN/Inf or integer data
// (model/state_dict.h).
// A detector export is refused here, naming ImportQuantizedDetector.
ImportedModel ImportQuantizedModel(const std::string& path);

struct ImportedDetector {
  std::unique_ptr<QuantizedDetector> detector;  // in Mode::kQuantized, weights frozen
  std::map<std::string, std::string> metadata;  // the file's metadata, as written
};

// True when the file's metadata says it is a detector export (format psaq_quantized and the
// detector's arch). Throws as ReadSafetensorsHeader for an unreadable file.
bool IsQuantizedDetectorExport(const std::map<std::string, std::string>& metadata);

// Reads a detector export and rebuilds the quantized detector (CPU, float32), bit-identical to
// the exported one. Throws std::runtime_error("<path>: <problem>") as ImportQuantizedModel, and
// for a missing or unknown "quant_scope" or a classifier export.
ImportedDetector ImportQuantizedDetector(const std::string& path);

}  // namespace psaq::quant
