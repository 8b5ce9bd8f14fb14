#include "quant/inspect.h"

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <sstream>
#include <vector>

#include "model/config.h"
#include "model/safetensors.h"
#include "quant/text_table.h"

namespace psaq::quant {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

constexpr char kQuantizedFormat[] = "psaq_quantized";

template <typename T>
std::string Join(const std::vector<T>& values, const std::string& separator) {
  std::ostringstream out;
  for (size_t i = 0; i < values.size(); ++i) out << (i ? separator : "") << values[i];
  return out.str();
}

std::string ShapeString(const at::Tensor& t) { return "[" + Join(t.sizes().vec(), ", ") + "]"; }

std::string DtypeName(const at::Tensor& t) { return std::string(c10::toString(t.scalar_type())); }

// Swin's derived buffers that some timm versions save: not parameters.
bool IsDerivedBuffer(const std::string& name) {
  auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends_with(".relative_position_index") || ends_with(".attn_mask");
}

// "vit: 28x28x1 input, patch 4, embed_dim 32, depth 2, 2 heads, mlp_ratio 2, 10 classes".
std::string DescribeArchitecture(const model::ModelConfig& c) {
  std::ostringstream out;
  out << model::ArchName(c.arch) << ": " << c.img_size() << "x" << c.img_size() << "x"
      << c.in_chans() << " input, ";
  if (c.arch == model::Arch::kViT) {
    out << "patch " << c.vit.patch_size << ", embed_dim " << c.vit.embed_dim << ", depth "
        << c.vit.depth << ", " << c.vit.num_heads << " heads, mlp_ratio " << c.vit.mlp_ratio;
  } else {
    out << "patch " << c.swin.patch_size << ", embed_dim " << c.swin.embed_dim << ", depths "
        << Join(c.swin.depths, "-") << ", heads " << Join(c.swin.num_heads, "-") << ", window "
        << c.swin.window_size << ", mlp_ratio " << c.swin.mlp_ratio;
  }
  out << ", " << c.num_classes() << " classes";
  return out.str();
}

std::string DescribePreprocess(const model::PreprocessConfig& p) {
  std::ostringstream out;
  out << "mean [" << Join(p.mean, ", ") << "], std [" << Join(p.std, ", ") << "], crop_pct "
      << p.crop_pct << ", " << p.interpolation;
  return out.str();
}

// The model part shared by weights files and exports: name, architecture, preprocessing.
void AddModelFields(const model::SafetensorsFile& header, Fields* fields) {
  const auto& meta = header.metadata;
  if (meta.count("arch") == 0 || meta.count("config") == 0) {
    fields->emplace_back("architecture",
                         "unknown: no \"arch\"/\"config\" metadata (a bare timm checkpoint; psaq "
                         "needs a weights file with psaq metadata)");
    return;
  }
  const model::ModelConfig config = model::ConfigFromMetadata(meta, header.source);
  if (!config.name.empty()) fields->emplace_back("name", config.name);
  fields->emplace_back("architecture", DescribeArchitecture(config));
  fields->emplace_back("config", meta.at("config"));
  fields->emplace_back("preprocess", DescribePreprocess(config.preprocess) +
                                         (meta.count("preprocess") ? "" : " (defaults)"));
}

// Tensor count, bytes by dtype, parameter count (tensors minus derived buffers).
void AddTensorFields(const model::SafetensorsFile& header, Fields* fields) {
  int64_t params = 0, bytes = 0, derived = 0;
  std::map<std::string, std::pair<int64_t, int64_t>> by_dtype;  // dtype -> (tensors, bytes)
  for (const auto& [name, t] : header.tensors) {
    const int64_t b = t.numel() * static_cast<int64_t>(t.element_size());
    bytes += b;
    auto& entry = by_dtype[DtypeName(t)];
    entry.first += 1;
    entry.second += b;
    if (IsDerivedBuffer(name)) {
      ++derived;
    } else {
      params += t.numel();
    }
  }
  std::string dtypes;
  for (const auto& [dtype, count] : by_dtype) {
    dtypes += (dtypes.empty() ? "" : ", ") + dtype + " " + FormatCount(count.first) + " (" +
              FormatBytes(count.second) + ")";
  }
  fields->emplace_back("tensors", FormatCount(static_cast<int64_t>(header.tensors.size())) + ", " +
                                      FormatBytes(bytes) + ": " + dtypes);
  fields->emplace_back(
      "parameters",
      FormatCount(params) + (derived > 0 ? " (not counting " + std::to_string(derived) +
                                               " derived index/mask buffers)"
                                         : ""));
}

std::string TensorTable(const model::SafetensorsFile& header) {
  TextTable table({"tensor", "dtype", "shape", "bytes"});
  table.SetAlign(3, TextTable::Align::kRight);
  for (const auto& [name, t] : header.tensors) {
    table.AddRow({name, DtypeName(t), ShapeString(t),
                  FormatCount(t.numel() * static_cast<int64_t>(t.element_size()))});
  }
  return table.Render(2);
}

}  // namespace

InspectedKind KindOfFile(const std::string& path) {
  const model::SafetensorsFile header = model::ReadSafetensorsHeader(path);
  const auto it = header.metadata.find("format");
  return it != header.metadata.end() && it->second == kQuantizedFormat
             ? InspectedKind::kQuantizedExport
             : InspectedKind::kWeights;
}

std::string InspectFile(const std::string& path, const InspectOptions& options) {
  const model::SafetensorsFile header = model::ReadSafetensorsHeader(path);
  Fields fields;
  fields.emplace_back(
      "file",
      path + " (" + FormatBytes(static_cast<int64_t>(std::filesystem::file_size(path))) + ")");
  fields.emplace_back("kind", "float weights (safetensors)");
  AddModelFields(header, &fields);
  AddTensorFields(header, &fields);
  std::string text = RenderFields(fields);
  if (options.list_tensors) text += "\n" + TensorTable(header);
  return text;
}

}  // namespace psaq::quant
