#include "model/detect/load_detector.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <filesystem>
#include <regex>
#include <stdexcept>
#include <utility>
#include <vector>

#include "model/safetensors.h"
#include "model/state_dict.h"

namespace psaq::detect {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Position q of the unfold order holds timm's block kUnfoldFromTimm[q]: (kh, kw) row-major is
// (0,0),(0,1),(1,0),(1,1); timm's blocks are (0,0),(1,0),(0,1),(1,1).
const std::vector<int64_t> kUnfoldFromTimm = {0, 2, 1, 3};

}  // namespace

DetectorPtr CreateDetector(const DetectorConfig& config) {
  return std::make_shared<MaskRcnn>(config);
}

at::Tensor MergeReductionTimmToUnfold(const at::Tensor& weight) {
  TORCH_CHECK(weight.dim() == 2 && weight.size(1) % 4 == 0,
              "MergeReductionTimmToUnfold: expected [O, 4C], got ", weight.sizes());
  const int64_t O = weight.size(0), C = weight.size(1) / 4;
  return weight.reshape({O, 4, C})
      .index_select(1, at::tensor(kUnfoldFromTimm, at::kLong).to(weight.device()))
      .transpose(1, 2)
      .reshape({O, 4 * C});
}

at::Tensor MergeNormTimmToUnfold(const at::Tensor& vector) {
  TORCH_CHECK(vector.dim() == 1 && vector.size(0) % 4 == 0,
              "MergeNormTimmToUnfold: expected [4C], got ", vector.sizes());
  return MergeReductionTimmToUnfold(vector.unsqueeze(0)).squeeze(0);
}

at::Tensor MergeReductionUnfoldToTimm(const at::Tensor& weight) {
  TORCH_CHECK(weight.dim() == 2 && weight.size(1) % 4 == 0,
              "MergeReductionUnfoldToTimm: expected [O, 4C], got ", weight.sizes());
  const int64_t O = weight.size(0), C = weight.size(1) / 4;
  // [O, C, 4 (unfold q)] -> [O, 4 (q), C] -> timm order (the permutation is its own inverse).
  return weight.reshape({O, C, 4})
      .transpose(1, 2)
      .index_select(1, at::tensor(kUnfoldFromTimm, at::kLong).to(weight.device()))
      .reshape({O, 4 * C});
}

at::Tensor MergeNormUnfoldToTimm(const at::Tensor& vector) {
  TORCH_CHECK(vector.dim() == 1 && vector.size(0) % 4 == 0,
              "MergeNormUnfoldToTimm: expected [4C], got ", vector.sizes());
  return MergeReductionUnfoldToTimm(vector.unsqueeze(0)).squeeze(0);
}

std::map<std::string, at::Tensor> ConvertTimmSwinToBackbone(
    const std::map<std::string, at::Tensor>& timm_state) {
  static const std::regex kBlock(R"(layers\.(\d+)\.blocks\.(\d+)\.(.+))");
  static const std::regex kDown(
      R"(layers\.(\d+)\.downsample\.(norm\.weight|norm\.bias|reduction\.weight))");
  std::map<std::string, at::Tensor> out;
  for (const auto& [key, value] : timm_state) {
    std::smatch m;
    if (key.rfind("head.", 0) == 0 || key == "norm.weight" || key == "norm.bias" ||
        EndsWith(key, ".relative_position_index") || EndsWith(key, ".attn_mask")) {
      continue;
    }
    if (key.rfind("patch_embed.proj.", 0) == 0) {
      out["backbone.patch_embed.projection." + key.substr(17)] = value;
    } else if (key.rfind("patch_embed.norm.", 0) == 0) {
      out["backbone." + key] = value;
    } else if (std::regex_match(key, m, kBlock)) {
      std::string rest = m[3];
      if (rest.rfind("attn.", 0) == 0) {
        rest = "attn.w_msa." + rest.substr(5);
      } else if (rest.rfind("mlp.fc1.", 0) == 0) {
        rest = "ffn.layers.0.0." + rest.substr(8);
      } else if (rest.rfind("mlp.fc2.", 0) == 0) {
        rest = "ffn.layers.1." + rest.substr(8);
      } else if (rest.rfind("norm1.", 0) != 0 && rest.rfind("norm2.", 0) != 0) {
        throw std::runtime_error("ConvertTimmSwinToBackbone: unknown timm Swin key '" + key + "'");
      }
      out["backbone.stages." + m[1].str() + ".blocks." + m[2].str() + "." + rest] = value;
    } else if (std::regex_match(key, m, kDown) && std::stoi(m[1]) >= 1) {
      const std::string part = m[2];
      const at::Tensor v = part == "reduction.weight" ? MergeReductionTimmToUnfold(value)
                                                      : MergeNormTimmToUnfold(value);
      out["backbone.stages." + std::to_string(std::stoi(m[1]) - 1) + ".downsample." + part] = v;
    } else {
      throw std::runtime_error("ConvertTimmSwinToBackbone: unknown timm Swin key '" + key + "'");
    }
  }
  return out;
}

bool IsDetectorFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  try {
    const model::SafetensorsFile file = model::ReadSafetensorsHeader(path);
    const auto arch = file.metadata.find("arch");
    return arch != file.metadata.end() && arch->second == kMaskRcnnSwinArch;
  } catch (const std::exception&) {
    return false;  // not a safetensors file: the classifier path says why
  }
}

DetectorPtr LoadDetector(const std::string& path, const std::optional<DetectorConfig>& fallback) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw std::runtime_error(path + ": not a readable detector weights file");
  }
  const model::SafetensorsFile file = model::ReadSafetensors(path);
  DetectorConfig config;
  if (file.metadata.count("arch") != 0 || file.metadata.count("config") != 0) {
    config = DetectorConfigFromMetadata(file.metadata, path);
  } else if (fallback) {
    config = *fallback;
  } else {
    throw std::runtime_error(path +
                             ": the file has no \"arch\"/\"config\" metadata and no "
                             "detector config was given");
  }
  config.name = std::filesystem::path(path).stem().string();
  std::map<std::string, at::Tensor> tensors = file.ToMap();
  // mmdetection's WindowMSA registers relative_position_index as a persistent buffer; it is a
  // derived constant, rebuilt here (as timm's checkpoint filter drops it for classifiers).
  double elements = 0;
  for (auto it = tensors.begin(); it != tensors.end();) {
    if (EndsWith(it->first, ".relative_position_index")) {
      it = tensors.erase(it);
    } else {
      elements += static_cast<double>(it->second.numel());
      ++it;
    }
  }
  // Checked before anything is built, so a small file cannot make us allocate a huge detector.
  try {
    ValidateDetectorConfig(config);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": invalid detector config: " + e.what());
  }
  const double expected = DetectorParameterCount(config);
  if (expected > elements) {
    throw std::runtime_error(path + ": the config describes " +
                             std::to_string(static_cast<int64_t>(expected)) +
                             " parameter values but the file holds only " +
                             std::to_string(static_cast<int64_t>(elements)));
  }
  DetectorPtr detector = CreateDetector(config);
  model::LoadStateDict(*detector, tensors, path);
  return detector;
}

void SaveDetector(const MaskRcnn& detector, const std::string& path,
                  const std::map<std::string, std::string>& extra) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& [name, t] : model::StateDict(detector)) tensors.emplace_back(name, t.detach());
  std::map<std::string, std::string> metadata = DetectorConfigToMetadata(detector.config());
  for (const auto& [key, value] : extra) {
    if (key == "arch" || key == "config" || key == "name") {
      throw std::invalid_argument("SaveDetector: extra metadata may not set \"" + key + "\"");
    }
    metadata[key] = value;
  }
  model::WriteSafetensors(path, tensors, metadata);
}

}  // namespace psaq::detect
