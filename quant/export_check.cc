#include "quant/export_check.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <set>
#include <stdexcept>

#include "model/file_limits.h"
#include "model/model_size.h"
#include "quant/export_format.h"
#include "quant/granularity.h"
#include "quant/quant_config.h"
#include "quant/quantizer.h"
#include "quant/range_observer.h"

namespace psaq::quant {
namespace {

std::string FormatG(double value) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", value);
  return buf;
}

namespace fmt = export_format;
using json = nlohmann::json;

[[noreturn]] void Fail(const std::string& path, const std::string& reason) {
  throw std::runtime_error(path + ": " + reason);
}

const std::string& Meta(const model::SafetensorsFile& header, const std::string& key) {
  const auto it = header.metadata.find(key);
  if (it == header.metadata.end()) Fail(header.source, "metadata '" + key + "' is missing");
  return it->second;
}

std::vector<ExportPoint> ParsePoints(const model::SafetensorsFile& header) {
  const std::string& text = Meta(header, "quant_points");
  model::CheckJsonDepth(text, header.source + ": metadata 'quant_points'");
  json points;
  try {
    points = json::parse(text);
  } catch (const json::exception& e) {
    Fail(header.source, std::string("metadata 'quant_points' is not valid JSON: ") + e.what());
  }
  if (!points.is_array()) Fail(header.source, "metadata 'quant_points' is not a JSON array");
  std::vector<ExportPoint> out;
  std::set<std::string> names;
  for (const json& p : points) {
    if (!p.is_object() || !p.contains("name") || !p["name"].is_string() || !p.contains("kind") ||
        !p["kind"].is_string() || !p.contains("bits") || !p["bits"].is_number_integer()) {
      Fail(header.source,
           "metadata 'quant_points' entry " + p.dump() + " needs string name, kind, int bits");
    }
    ExportPoint point{p["name"].get<std::string>(), p["kind"].get<std::string>(), 0};
    if (point.kind != fmt::kWeightKind && point.kind != fmt::kActivationKind) {
      Fail(header.source, "quant point '" + point.name + "' has kind '" + point.kind +
                              "' (expected weight or activation)");
    }
    point.bits =
        ParseBits(p["bits"].dump(), "quant point '" + point.name + "' bits", header.source);
    if (!names.insert(point.name).second) {
      Fail(header.source, "quant point '" + point.name + "' is listed twice");
    }
    out.push_back(std::move(point));
  }
  return out;
}

// The tensor `name` of the header with `dtype` (and `dim` when >= 0).
void ExpectTensor(const std::map<std::string, const at::Tensor*>& tensors, const std::string& name,
                  at::ScalarType dtype, int64_t dim, const std::string& path) {
  const auto it = tensors.find(name);
  if (it == tensors.end()) Fail(path, "tensor '" + name + "' is missing");
  const at::Tensor& t = *it->second;
  if (t.scalar_type() != dtype || (dim >= 0 && t.dim() != dim)) {
    Fail(path, "tensor '" + name + "' is " + std::string(c10::toString(t.scalar_type())) + " " +
                   c10::str(t.sizes()) + ", expected " + c10::toString(dtype) +
                   (dim >= 0 ? " of rank " + std::to_string(dim) : std::string()));
  }
}

// A finite number at `key` of point `p`; fails naming the manifest and the point.
double Number(const json& p, const char* key, const std::string& point, const std::string& path) {
  if (!p.contains(key) || !p[key].is_number()) {
    Fail(path, "point '" + point + "' has no number \"" + key + "\"");
  }
  const double v = p[key].get<double>();
  if (!std::isfinite(v)) Fail(path, "point '" + point + "' " + key + " is not finite");
  return v;
}

void ExpectScale(double v, const char* key, const std::string& point, const std::string& path) {
  if (!fmt::IsSaneScale(v)) {
    Fail(path, "point '" + point + "' " + key + " " + FormatG(v) +
                   " is outside psaq's scale range [" + FormatG(fmt::kMinScale) + ", " +
                   FormatG(fmt::kMaxScale) + "]");
  }
}

void CheckWeightPoint(const json& p, const ExportPoint& point,
                      const std::map<std::string, const at::Tensor*>& tensors,
                      const std::string& path) {
  const auto it = tensors.find(point.name);
  if (it != tensors.end()) {
    const std::vector<int64_t> shape = it->second->sizes().vec();
    if (!p.contains("shape") || p["shape"] != json(shape)) {
      Fail(path, "point '" + point.name + "' shape " +
                     (p.contains("shape") ? p["shape"].dump() : std::string("(none)")) +
                     " differs from the export's tensor " + c10::str(it->second->sizes()));
    }
  }
  if (point.bits == kBitsOff) return;
  const auto scale = tensors.find(fmt::ScaleName(point.name));
  if (scale != tensors.end() &&
      (!p.contains("channels") || p["channels"] != json(scale->second->numel()))) {
    Fail(path, "point '" + point.name + "' channels " +
                   (p.contains("channels") ? p["channels"].dump() : std::string("(none)")) +
                   " differs from the export's " + std::to_string(scale->second->numel()));
  }
  const double lo = Number(p, "scale_min", point.name, path);
  const double mean = Number(p, "scale_mean", point.name, path);
  const double hi = Number(p, "scale_max", point.name, path);
  ExpectScale(lo, "scale_min", point.name, path);
  ExpectScale(mean, "scale_mean", point.name, path);
  ExpectScale(hi, "scale_max", point.name, path);
  // The mean is a float64 sum over float32 values: allow its rounding, not an inversion.
  if (lo > hi || mean < lo * (1 - 1e-6) || mean > hi * (1 + 1e-6)) {
    Fail(path, "point '" + point.name + "' scales min " + FormatG(lo) + ", mean " + FormatG(mean) +
                   ", max " + FormatG(hi) + " are not ordered min <= mean <= max");
  }
}

void CheckActivationPoint(const json& p, const ExportPoint& point, const std::string& path) {
  if (point.bits == kBitsOff && !p.contains("min") && !p.contains("max")) return;
  const double lo = Number(p, "min", point.name, path);
  const double hi = Number(p, "max", point.name, path);
  if (lo > hi) {
    Fail(path, "point '" + point.name + "' range [" + FormatG(lo) + ", " + FormatG(hi) +
                   "] has min > max");
  }
  if (point.bits == kBitsOff) return;
  ExpectScale(Number(p, "scale", point.name, path), "scale", point.name, path);
  const double z = Number(p, "zero_point", point.name, path);
  const double zmax = std::ldexp(1.0, point.bits) - 1;
  if (z < 0 || z > zmax) {
    Fail(path, "point '" + point.name + "' zero point " + FormatG(z) + " is outside [0, " +
                   FormatG(zmax) + "] at " + std::to_string(point.bits) + " bits");
  }
}

std::map<std::string, const at::Tensor*> IndexTensors(const model::SafetensorsFile& header) {
  std::map<std::string, const at::Tensor*> index;
  for (const auto& [name, t] : header.tensors) index.emplace(name, &t);
  return index;
}

}  // namespace

int ParseBits(const std::string& text, const std::string& what, const std::string& path) {
  const std::optional<int> bits = BitsFromText(text);
  if (!bits) {
    Fail(path, what + " = '" + text + "' is not a bit width (" + std::to_string(kMinBits) + ".." +
                   std::to_string(kMaxBits) + " or " + std::to_string(kBitsOff) + ")");
  }
  return *bits;
}

void CheckScaleRange(const at::Tensor& scales, const std::string& name, const std::string& path) {
  if (scales.numel() == 0) return;
  const at::Tensor s = scales.to(at::kDouble);
  if (!at::isfinite(s).all().item<bool>() || !(s > 0).all().item<bool>()) {
    throw std::runtime_error(path + ": tensor '" + name +
                             "' holds a non-finite or non-positive scale");
  }
  const double lo = s.min().item<double>();
  const double hi = s.max().item<double>();
  if (!export_format::IsSaneScale(lo) || !export_format::IsSaneScale(hi)) {
    throw std::runtime_error(path + ": tensor '" + name + "' holds scales in [" + FormatG(lo) +
                             ", " + FormatG(hi) + "], outside psaq's range [" +
                             FormatG(export_format::kMinScale) + ", " +
                             FormatG(export_format::kMaxScale) + "]");
  }
}

void CheckModelFitsExport(const model::ModelConfig& config, const model::SafetensorsFile& file) {
  uint64_t elements = 0;
  for (const auto& [name, t] : file.tensors) elements += static_cast<uint64_t>(t.numel());
  model::CheckConfigFitsFile(config, file.tensors.size(), elements, file.source);
}

std::vector<ExportPoint> CheckExportHeader(const model::SafetensorsFile& header) {
  const std::string& path = header.source;
  if (Meta(header, "format_version") != fmt::kFormatVersion) {
    Fail(path, "unsupported format_version '" + Meta(header, "format_version") +
                   "' (this reader: " + fmt::kFormatVersion + ")");
  }
  if (Meta(header, "weight_storage") != fmt::kWeightStorage) {
    Fail(path, "unsupported weight_storage '" + Meta(header, "weight_storage") + "'");
  }
  ParseBits(Meta(header, "w_bits"), "metadata w_bits", path);
  ParseBits(Meta(header, "a_bits"), "metadata a_bits", path);
  try {
    ParseGranularity(Meta(header, "weight_granularity"));
    ParseObserverKind(Meta(header, "act_observer"));
    if (header.metadata.count("input_range") != 0) ParseInputRange(Meta(header, "input_range"));
    if (header.metadata.count("quantizer") != 0) ParseQuantizerKind(Meta(header, "quantizer"));
  } catch (const std::invalid_argument& e) {
    Fail(path, e.what());
  }
  const std::vector<ExportPoint> points = ParsePoints(header);
  const auto tensors = IndexTensors(header);
  for (const ExportPoint& p : points) {
    if (p.bits == kBitsOff) continue;
    if (p.kind == fmt::kWeightKind) {
      ExpectTensor(tensors, p.name, at::kChar, -1, path);
      ExpectTensor(tensors, fmt::ScaleName(p.name), at::kFloat, 1, path);
    } else {
      ExpectTensor(tensors, fmt::ActName(p.name, "range"), at::kFloat, -1, path);
      ExpectTensor(tensors, fmt::ActName(p.name, "scale"), at::kFloat, -1, path);
      ExpectTensor(tensors, fmt::ActName(p.name, "zero_point"), at::kFloat, -1, path);
    }
  }
  return points;
}

void CheckManifest(const json& manifest, const model::SafetensorsFile& header,
                   const std::vector<ExportPoint>& points, const std::string& path) {
  if (!manifest.is_object() || !manifest.contains("points") || !manifest["points"].is_array()) {
    Fail(path, "no \"points\" array");
  }
  // Every metadata entry of the export, as the writer copies them (config/preprocess nested).
  for (const auto& [key, value] : header.metadata) {
    if (key == "quant_points") continue;
    json expected = value;
    if (key == "config" || key == "preprocess") {
      model::CheckJsonDepth(value, header.source + ": metadata \"" + key + "\"");
      expected = json::parse(value, nullptr, /*allow_exceptions=*/false);
    }
    if (!manifest.contains(key)) {
      Fail(path, "has no \"" + key + "\" although the export " + header.source +
                     " has it: not this export's manifest");
    }
    if (manifest[key] != expected) {
      Fail(path, "disagrees with the export " + header.source + " on \"" + key + "\": " +
                     manifest[key].dump() + " here, " + expected.dump() + " in the export");
    }
  }
  const json& listed = manifest["points"];
  if (listed.size() != points.size()) {
    Fail(path, "lists " + std::to_string(listed.size()) + " points, the export " +
                   std::to_string(points.size()));
  }
  const auto tensors = IndexTensors(header);
  for (size_t i = 0; i < points.size(); ++i) {
    const json& p = listed[i];
    const ExportPoint& point = points[i];
    if (!p.is_object() || p.value("name", json()) != point.name ||
        p.value("kind", json()) != point.kind || p.value("bits", json()) != point.bits) {
      Fail(path, "point #" + std::to_string(i) + " is " + p.dump() + ", the export has " +
                     point.kind + " '" + point.name + "' at " + std::to_string(point.bits) +
                     " bits");
    }
    if (point.kind == fmt::kWeightKind) {
      CheckWeightPoint(p, point, tensors, path);
    } else {
      CheckActivationPoint(p, point, path);
    }
  }
}

}  // namespace psaq::quant
