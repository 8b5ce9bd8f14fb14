#include "model/registry.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <filesystem>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/detect/detector_config.h"
#include "model/model_size.h"
#include "model/safetensors.h"
#include "model/state_dict.h"
#include "model/swin.h"
#include "model/vit.h"

namespace psaq::model {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// timm's Swin checkpoint filter drops these derived constants (persistent buffers in older timm
// versions, so files saved by them carry them); they are rebuilt from the config here too.
std::map<std::string, at::Tensor> DropDerivedBuffers(std::map<std::string, at::Tensor> tensors,
                                                     Arch arch) {
  if (arch != Arch::kSwin) return tensors;
  for (auto it = tensors.begin(); it != tensors.end();) {
    if (EndsWith(it->first, ".relative_position_index") || EndsWith(it->first, ".attn_mask")) {
      it = tensors.erase(it);
    } else {
      ++it;
    }
  }
  return tensors;
}

std::string PresetList() {
  std::ostringstream s;
  const std::vector<std::string> names = PresetNames();
  for (size_t i = 0; i < names.size(); ++i) s << (i ? ", " : "") << names[i];
  return s.str();
}

}  // namespace

ModelPtr CreateModel(const ModelConfig& config) {
  ValidateConfig(config);
  switch (config.arch) {
    case Arch::kViT:
      return CreateViT(config);
    case Arch::kSwin:
      return CreateSwin(config);
  }
  TORCH_INTERNAL_ASSERT(false, "unknown Arch ", static_cast<int>(config.arch));
}

ModelPtr LoadModel(const std::string& name_or_path, const std::string& fallback_preset) {
  if (IsPreset(name_or_path)) return CreateModel(PresetConfig(name_or_path));
  const std::string& path = name_or_path;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw std::runtime_error(path + ": neither a preset name (" + PresetList() +
                             ") nor a readable weights file");
  }
  const SafetensorsFile file = ReadSafetensors(path);
  ModelConfig config;
  if (auto arch = file.metadata.find("arch");
      arch != file.metadata.end() && arch->second == detect::kMaskRcnnSwinArch) {
    throw std::runtime_error(path + ": a Swin Mask R-CNN detector (arch \"" + arch->second +
                             "\"), not a classifier: load it with psaq::detect::LoadDetector");
  }
  if (file.metadata.count("arch") != 0 || file.metadata.count("config") != 0) {
    config = ConfigFromMetadata(file.metadata, path);
  } else if (!fallback_preset.empty()) {
    if (!IsPreset(fallback_preset)) {
      throw std::runtime_error(path +
                               ": the file has no \"arch\"/\"config\" metadata and the "
                               "fallback '" +
                               fallback_preset + "' is not a preset (" + PresetList() + ")");
    }
    config = PresetConfig(fallback_preset);
  } else {
    throw std::runtime_error(path +
                             ": the file has no \"arch\"/\"config\" metadata; name its "
                             "architecture with a preset (" +
                             PresetList() + ")");
  }
  // Named after the file (not the preset or the metadata's name), so reports and exports say
  // which weights were loaded.
  config.name = std::filesystem::path(path).stem().string();
  // The config must not describe more than the file holds: checked before the model is built, so
  // a small file cannot make us allocate (or build blocks) for a huge one.
  const std::map<std::string, at::Tensor> tensors = DropDerivedBuffers(file.ToMap(), config.arch);
  uint64_t elements = 0;
  for (const auto& [name, t] : tensors) elements += static_cast<uint64_t>(t.numel());
  CheckConfigFitsFile(config, tensors.size(), elements, path);
  ModelPtr model = CreateModel(config);
  LoadStateDict(*model, tensors, path);
  return model;
}

ModelPtr CloneModel(const VisionModel& model) {
  ModelPtr clone = CreateModel(model.config());
  const std::vector<at::Tensor> params = model.parameters();
  // Moved first: LoadStateDict converts to the destination's device and dtype, which must then
  // be the source's.
  if (!params.empty()) clone->to(params.front().device(), params.front().scalar_type());
  std::map<std::string, at::Tensor> state;
  for (const auto& [name, tensor] : StateDict(model)) state.emplace(name, tensor.detach());
  LoadStateDict(*clone, state, "clone of '" + model.config().name + "'");
  // Frozen parameters stay frozen in the copy.
  auto clone_params = clone->named_parameters();
  for (const auto& item : model.named_parameters()) {
    clone_params[item.key()].set_requires_grad(item.value().requires_grad());
  }
  clone->train(model.is_training());
  return clone;
}

}  // namespace psaq::model
