// Creating models by preset name, by config, or from a weights file.
#pragma once

#include <string>

#include "model/config.h"
#include "model/vision_model.h"

namespace psaq::model {

// A randomly initialised model (timm-like init, seeded by the caller's torch RNG) for `config`:
// a ViT/DeiT (model/vit.h) or a Swin (model/swin.h), float32 on the CPU.
// Throws std::invalid_argument for an invalid config (ValidateConfig).
ModelPtr CreateModel(const ModelConfig& config);

// `name_or_path` is a preset name (random init) or a path to a .safetensors weights file whose
// metadata holds "arch" and "config" (plus optional "preprocess"); the weights are loaded strictly.
// When the file has no "arch"/"config" metadata, `fallback_preset` (if non-empty) gives the
// architecture -- the case of a timm `model.safetensors` downloaded for a preset. The model's
// config().name is the file's stem. Swin's derived constants that older timm versions saved
// (keys ending in ".relative_position_index" / ".attn_mask") are ignored, as timm's checkpoint
// filter does; every other key must match (strict, see model/state_dict.h), and the weights
// must be finite floating-point values.
// Before the model is built, the config is validated (ValidateConfig: sane bounds included) and
// checked against the tensors the file holds (CheckConfigFitsFile, model/model_size.h), so a
// config that describes a far larger model than the file is refused without allocating it.
// Throws std::runtime_error naming the file and the reason (an unknown name that is not a file
// lists the presets).
ModelPtr LoadModel(const std::string& name_or_path, const std::string& fallback_preset = "");

// Same weights and config in a new, independent model (used for the student copy of a teacher):
// same device, dtype, train/eval mode and requires_grad flags; its own TapSet with no observer attached. Draws from
// the torch RNG (the new model is initialised before the copy).
ModelPtr CloneModel(const VisionModel& model);

}  // namespace psaq::model
