// Creating models by preset name, by config, or from a weights file.
#pragma once

#include <string>

#include "model/config.h"
#include "model/vision_model.h"

namespace psaq::model {

// A randomly initialised model (timm-like init, seeded by the caller's torch RNG) for `config`.
// Throws std::invalid_argument for an invalid config.
ModelPtr CreateModel(const ModelConfig& config);

// `name_or_path` is a preset name (random init) or a path to a .safetensors weights file whose
// metadata holds "arch" and "config" (plus optional "preprocess"); the weights are loaded strictly.
// When the file has no "arch"/"config" metadata, `fallback_preset` (if non-empty) gives the
// architecture -- the case of a timm `model.safetensors` downloaded for a preset.
// Throws std::runtime_error naming the file and the reason.
ModelPtr LoadModel(const std::string& name_or_path, const std::string& fallback_preset = "");

// Same weights and config in a new, independent model (used for the student copy of a teacher).
ModelPtr CloneModel(const VisionModel& model);

}  // namespace psaq::model
