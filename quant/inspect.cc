#include "quant/inspect.h"

#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "model/config.h"
#include "model/file_limits.h"
#include "model/model_size.h"
#include "model/safetensors.h"
#include "quant/export.h"
#include "quant/export_check.h"
#include "quant/export_format.h"
#include "dist/base/text_table.h"
#include "model/detect/load_detector.h"
#include "quant/export.h"

namespace psaq::quant {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;
using json = nlohmann::json;
namespace fmt = export_format;

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
  // As psaq eval would refuse it: a config describing more than the file's tensors.
  uint64_t tensors = 0, elements = 0;
  for (const auto& [name, t] : header.tensors) {
    if (IsDerivedBuffer(name)) continue;
    ++tensors;
    elements += static_cast<uint64_t>(t.numel());
  }
  model::CheckConfigFitsFile(config, tensors, elements, header.source);
  if (!config.name.empty()) fields->emplace_back("name", config.name);
  fields->emplace_back("architecture", DescribeArchitecture(config));
  fields->emplace_back("config", meta.at("config"));
  fields->emplace_back("preprocess", DescribePreprocess(config.preprocess) +
                                         (meta.count("preprocess") ? "" : " (defaults)"));
}

// True for the tensors of an export that are not model parameters: activation ranges, scales and
// zero points ("act.*") and the per-channel scales of integer weights ("<param>.scale").
// `int8_names`: the names of the export's I8 tensors (a set, so that n tensors cost n log n).
bool IsQuantizationTensor(const std::set<std::string>& int8_names, const std::string& name) {
  if (name.rfind("act.", 0) == 0) return true;
  const std::string suffix = ".scale";
  if (name.size() <= suffix.size() ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return false;
  }
  return int8_names.count(name.substr(0, name.size() - suffix.size())) != 0;
}

// Tensor count, bytes by dtype, parameter count (tensors minus derived buffers and, in an
// export, minus the quantization tensors).
void AddTensorFields(const model::SafetensorsFile& header, bool is_export, Fields* fields) {
  int64_t params = 0, bytes = 0, derived = 0;
  std::map<std::string, std::pair<int64_t, int64_t>> by_dtype;  // dtype -> (tensors, bytes)
  std::set<std::string> int8_names;
  for (const auto& [name, t] : header.tensors) {
    if (t.scalar_type() == at::kChar) int8_names.insert(name);
  }
  for (const auto& [name, t] : header.tensors) {
    const int64_t b = t.numel() * static_cast<int64_t>(t.element_size());
    bytes += b;
    auto& entry = by_dtype[DtypeName(t)];
    entry.first += 1;
    entry.second += b;
    if (IsDerivedBuffer(name)) {
      ++derived;
    } else if (!is_export || !IsQuantizationTensor(int8_names, name)) {
      params += t.numel();
    }
  }
  std::string dtypes;
  for (const auto& [dtype, count] : by_dtype) {
    dtypes += (dtypes.empty() ? "" : ", ") + dtype + " " + base::FormatCount(count.first) + " (" +
              base::FormatBytes(count.second) + ")";
  }
  fields->emplace_back("tensors", base::FormatCount(static_cast<int64_t>(header.tensors.size())) + ", " +
                                      base::FormatBytes(bytes) + ": " + dtypes);
  fields->emplace_back(
      "parameters",
      base::FormatCount(params) + (derived > 0 ? " (not counting " + std::to_string(derived) +
                                               " derived index/mask buffers)"
                                         : ""));
}

std::string TensorTable(const model::SafetensorsFile& header) {
  base::TextTable table({"tensor", "dtype", "shape", "bytes"});
  table.SetAlign(3, base::TextTable::Align::kRight);
  for (const auto& [name, t] : header.tensors) {
    table.AddRow({name, DtypeName(t), ShapeString(t),
                  base::FormatCount(t.numel() * static_cast<int64_t>(t.element_size()))});
  }
  return table.Render(2);
}

std::string Meta(const model::SafetensorsFile& header, const std::string& key) {
  const auto it = header.metadata.find(key);
  return it == header.metadata.end() ? "?" : it->second;
}

// "%.4g": scales and ranges span many decades.
std::string FormatG(double value) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", value);
  return buf;
}

// "12 weight (4 bits: 11, 8 bits: 1), 20 activation (8 bits: 20)" from "quant_points".
std::string DescribePoints(const model::SafetensorsFile& header) {
  json points;
  try {
    points = json::parse(Meta(header, "quant_points"));
  } catch (const json::exception& e) {
    throw std::runtime_error(header.source +
                             ": metadata 'quant_points' is not valid JSON: " + e.what());
  }
  std::map<std::string, std::map<int, int64_t>> bits;  // kind -> bits -> count
  for (const json& p : points) {
    if (p.is_object() && p.contains("kind") && p["kind"].is_string() && p.contains("bits") &&
        p["bits"].is_number_integer()) {
      bits[p["kind"].get<std::string>()][p["bits"].get<int>()] += 1;
    }
  }
  std::string text;
  for (const char* kind : {fmt::kWeightKind, fmt::kActivationKind}) {
    const auto& by_bits = bits[kind];
    int64_t total = 0;
    std::string detail;
    for (const auto& [b, count] : by_bits) {
      total += count;
      detail += (detail.empty() ? "" : ", ") + std::to_string(b) + " bits: " + base::FormatCount(count);
    }
    text += (text.empty() ? "" : ", ") + base::FormatCount(total) + " " + kind + " points" +
            (detail.empty() ? "" : " (" + detail + ")");
  }
  return text;
}

void AddExportFields(const model::SafetensorsFile& header, Fields* fields) {
  fields->emplace_back("kind", std::string("quantized export (") + fmt::kFormat + " version " +
                                   Meta(header, "format_version") + ", " +
                                   Meta(header, "weight_storage") + " weight codes)");
  fields->emplace_back("bits", "W" + Meta(header, "w_bits") + "A" + Meta(header, "a_bits") +
                                   " (weights " + Meta(header, "weight_granularity") +
                                   ", activation ranges " + Meta(header, "act_observer") +
                                   (Meta(header, "input_range") == "pixel_box"
                                        ? ", input over the pixel box"
                                        : "") +
                                   (header.metadata.count("quantizer") != 0 &&
                                            Meta(header, "quantizer") != "psaq"
                                        ? ", quantizer " + Meta(header, "quantizer")
                                        : std::string()) +
                                   ")");
  fields->emplace_back("calibration",
                       Meta(header, "method") + ", " + Meta(header, "num_samples") + " samples");
  fields->emplace_back("written by", Meta(header, "tool") + " (psaq " +
                                         Meta(header, "psaq_version") + ") at " +
                                         Meta(header, "created"));
  fields->emplace_back("quant points", DescribePoints(header));
}

double Number(const json& point, const char* key) {
  return point.contains(key) && point[key].is_number() ? point[key].get<double>() : std::nan("");
}

// The manifest's points as two tables, and a summary of the per-channel weight scales. The
// manifest is checked against the export first (CheckManifest): what is shown is what it holds.
std::string ManifestSection(const model::SafetensorsFile& header,
                            const std::vector<ExportPoint>& points, const InspectOptions& options) {
  const std::string manifest_path = ManifestPath(header.source);
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::symlink_status(manifest_path, ec))) {
    return "\nmanifest " + manifest_path +
           " not found: the export loads without it, but its per-point table is there\n";
  }
  // A regular file of bounded size only (a FIFO would block here), nesting bounded before parsing.
  const std::string content = model::ReadRegularFile(manifest_path, model::kMaxHeaderBytes);
  model::CheckJsonDepth(content, manifest_path);
  json manifest;
  try {
    manifest = json::parse(content);
  } catch (const json::exception& e) {
    throw std::runtime_error(manifest_path + ": not valid JSON: " + e.what());
  }
  CheckManifest(manifest, header, points, manifest_path);
  base::TextTable weights({"weight", "bits", "shape", "scale min", "scale mean", "scale max"});
  base::TextTable activations(
      {"activation", "bits", "min", "max", "scale", "zero point", "quantizer"});
  for (int c = 1; c < 6; ++c) {
    weights.SetAlign(c, base::TextTable::Align::kRight);
    activations.SetAlign(c, base::TextTable::Align::kRight);
  }
  std::vector<double> mins, means, maxs;
  for (const json& p : manifest["points"]) {
    const std::string name = p.value("name", std::string("?"));
    const std::string bits = p.contains("bits") ? p["bits"].dump() : "?";
    if (p.value("kind", std::string()) == fmt::kWeightKind) {
      std::string shape = "?";
      if (p.contains("shape") && p["shape"].is_array()) {
        shape = "[" + Join(p["shape"].get<std::vector<int64_t>>(), ", ") + "]";
      }
      weights.AddRow({name, bits, shape, FormatG(Number(p, "scale_min")),
                      FormatG(Number(p, "scale_mean")), FormatG(Number(p, "scale_max"))});
      if (p.contains("scale_min")) {
        mins.push_back(Number(p, "scale_min"));
        means.push_back(Number(p, "scale_mean"));
        maxs.push_back(Number(p, "scale_max"));
      }
    } else {
      activations.AddRow({name, bits, FormatG(Number(p, "min")), FormatG(Number(p, "max")),
                          FormatG(Number(p, "scale")), FormatG(Number(p, "zero_point")),
                          p.value("quantizer", std::string("uniform"))});
    }
  }
  std::string text = "\nmanifest " + manifest_path + "\n";
  if (!means.empty()) {
    std::vector<double> sorted = means;
    std::sort(sorted.begin(), sorted.end());
    text += "weight scales over " + std::to_string(means.size()) + " quantized weights: min " +
            FormatG(*std::min_element(mins.begin(), mins.end())) + ", median of channel means " +
            FormatG(sorted[sorted.size() / 2]) + ", max " +
            FormatG(*std::max_element(maxs.begin(), maxs.end())) + "\n";
  }
  if (options.list_points) {
    text += "\n" + weights.Render(2) + "\n" + activations.Render(2);
  }
  return text;
}

}  // namespace

InspectedKind KindOfFile(const std::string& path) {
  const model::SafetensorsFile header = model::ReadSafetensorsHeader(path);
  const auto it = header.metadata.find("format");
  return it != header.metadata.end() && it->second == fmt::kFormat ? InspectedKind::kQuantizedExport
                                                                   : InspectedKind::kWeights;
}

std::string DescribeDetectorPoints(const QuantizedDetector& q) {
  base::TextTable table({"point", "kind", "bits", "scope", "range"});
  table.SetAlign(2, base::TextTable::Align::kRight);
  for (const model::TapInfo& info : q.tap_set().taps()) {
    if (info.kind == model::TapKind::kFeature) continue;
    const int id = q.TapId(info.name);
    const bool weight = info.kind == model::TapKind::kWeight;
    const int bits = weight ? q.weight_quantizer(id).bits() : q.activation_quantizer(id).bits();
    std::string range = "-";
    if (!weight && q.activation_quantizer(id).has_range()) {
      const auto [lo, hi] = q.activation_quantizer(id).range();
      range = "[" + base::FormatFixed(lo, 4) + ", " + base::FormatFixed(hi, 4) + "]";
    }
    table.AddRow({info.name, weight ? fmt::kWeightKind : fmt::kActivationKind,
                  bits == kBitsOff ? "float" : std::to_string(bits),
                  q.in_scope(id) ? "in" : "out", range});
  }
  return table.Render();
}

namespace {

// A detector file: a float detector (its points under options.quant and options.scope) or a
// quantized detector export (rebuilt from the file: its points, bits and ranges).
std::string InspectDetector(const std::string& path, const model::SafetensorsFile& header,
                            const InspectOptions& options) {
  Fields fields;
  fields.emplace_back(
      "file",
      path + " (" + base::FormatBytes(static_cast<int64_t>(std::filesystem::file_size(path))) + ")");
  std::unique_ptr<QuantizedDetector> q;
  if (IsQuantizedDetectorExport(header.metadata)) {
    q = ImportQuantizedDetector(path).detector;
    fields.emplace_back("kind", "quantized detector export (" + std::string(fmt::kFormat) + ")");
    for (const char* key : {"method", "num_samples", "psaq_version", "created"}) {
      const auto it = header.metadata.find(key);
      if (it != header.metadata.end()) fields.emplace_back(key, it->second);
    }
  } else {
    q = std::make_unique<QuantizedDetector>(detect::LoadDetector(path), options.quant,
                                            options.scope);
    fields.emplace_back("kind", "float detector weights; points as --w_bits, --a_bits and "
                                "--quant_scope would quantize them");
  }
  const detect::DetectorConfig& c = q->detector().config();
  fields.emplace_back("model", c.name + " (" + detect::kMaskRcnnSwinArch + ", " +
                                   std::to_string(c.num_classes) + " classes)");
  fields.emplace_back("bits", DescribeQuantConfig(q->config()));
  fields.emplace_back("quant scope", DetectorScopeName(q->scope()));
  int64_t quantized = 0, total = 0;
  for (int id : q->weight_taps()) {
    ++total;
    quantized += q->weight_quantizer(id).enabled();
  }
  for (int id : q->activation_taps()) {
    ++total;
    quantized += q->activation_quantizer(id).enabled();
  }
  fields.emplace_back("points", std::to_string(quantized) + " of " + std::to_string(total) +
                                    " quantized (the others float)");
  std::string text = base::RenderFields(fields);
  if (options.list_points) text += "\n" + DescribeDetectorPoints(*q);
  if (options.list_tensors) text += "\n" + TensorTable(header);
  return text;
}

}  // namespace

std::string InspectFile(const std::string& path, const InspectOptions& options) {
  const model::SafetensorsFile header = model::ReadSafetensorsHeader(path);
  const auto arch = header.metadata.find("arch");
  if (arch != header.metadata.end() && arch->second == detect::kMaskRcnnSwinArch) {
    return InspectDetector(path, header, options);
  }
  Fields fields;
  fields.emplace_back(
      "file",
      path + " (" + base::FormatBytes(static_cast<int64_t>(std::filesystem::file_size(path))) + ")");
  const auto format = header.metadata.find("format");
  const bool is_export = format != header.metadata.end() && format->second == fmt::kFormat;
  std::vector<ExportPoint> points;
  if (is_export) {
    points = CheckExportHeader(header);  // bits, points and their tensors, before showing them
    AddExportFields(header, &fields);
  } else {
    fields.emplace_back("kind", "float weights (safetensors)");
  }
  AddModelFields(header, &fields);
  AddTensorFields(header, is_export, &fields);
  // Said plainly: inspect reads no tensor data, so NaN weights or scales are not seen here.
  fields.emplace_back("checked", std::string("header and metadata") +
                                     (is_export ? ", manifest when present" : "") +
                                     "; tensor values not read (psaq eval loads and checks them)");
  std::string text = base::RenderFields(fields);
  if (is_export) text += ManifestSection(header, points, options);
  if (options.list_tensors) text += "\n" + TensorTable(header);
  return text;
}

}  // namespace psaq::quant
