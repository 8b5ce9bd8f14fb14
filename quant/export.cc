// The writer half of quant/export.h (the reader is import.cc).
#include "quant/export.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>

#include <ctime>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <vector>

#include "dist/base/atomic_file.h"
#include "dist/base/utc_time.h"
#include "model/config.h"
#include "model/detect/detector_config.h"
#include "model/safetensors.h"
#include "model/state_dict.h"
#include "quant/export_format.h"
#include "quant/uniform.h"
#include "quant/weight_quantizer.h"

namespace psaq::quant {
namespace {

using json = nlohmann::json;
namespace fmt = export_format;

// Integer codes and the flat [C] scales of a quantized weight.
std::pair<at::Tensor, at::Tensor> WeightCodes(const Quantizer& quantizer, const at::Tensor& w) {
  // An imported weight exports the codes and scales it was imported with: requantizing q * s
  // would not give the scales back (quant/weight_quantizer.h).
  if (const auto* frozen = dynamic_cast<const FrozenWeightQuantizer*>(&quantizer)) {
    return {frozen->codes().cpu(), frozen->scale().cpu().reshape({-1})};
  }
  const UniformGrid grid = quantizer.Grid(w);
  // Symmetric codes of at most 8 bits lie in [-128, 127]: int8 holds them exactly.
  return {QuantizeToGrid(w, grid).to(at::kChar), grid.scale.reshape({-1})};
}

json WeightPoint(const std::string& name, int bits, const at::Tensor& w, const at::Tensor& scale) {
  json point = {
      {"name", name}, {"kind", fmt::kWeightKind}, {"bits", bits}, {"shape", w.sizes().vec()}};
  if (scale.defined()) {
    point["channels"] = scale.numel();
    point["scale_min"] = scale.min().item<double>();
    point["scale_mean"] = scale.to(at::kDouble).mean().item<double>();
    point["scale_max"] = scale.max().item<double>();
  }
  return point;
}

}  // namespace

std::string ManifestPath(const std::string& safetensors_path) {
  const std::string ext = ".safetensors";
  const std::string& p = safetensors_path;
  if (p.size() > ext.size() && p.compare(p.size() - ext.size(), ext.size(), ext) == 0) {
    return p.substr(0, p.size() - ext.size()) + ".manifest.json";
  }
  return p + ".manifest.json";
}

namespace {

// The export of any quantizer bank; `metadata` holds the network's own entries (its config).
void WriteExport(const TapQuantizers& model, std::map<std::string, std::string> metadata,
                 const std::string& path, const ExportOptions& options) {
  at::NoGradGuard no_grad;
  const torch::nn::Module& vm = model.module();
  for (const auto& p : vm.parameters()) {
    TORCH_CHECK(p.scalar_type() == at::kFloat, "ExportQuantizedModel: float32 parameters ",
                "required, the model has ", p.scalar_type());
  }
  std::unordered_map<std::string, int> weight_ids;
  for (int id : model.weight_taps()) weight_ids.emplace(model.tap(id).name, id);

  // Parameters and buffers in the model's order; integer codes replace quantized weights.
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  std::unordered_map<int, json> weight_points;
  for (const auto& [name, value] : model::StateDict(vm)) {
    const at::Tensor t = value.detach().cpu();
    auto it = weight_ids.find(name);
    if (it == weight_ids.end()) {
      tensors.emplace_back(name, t);
      continue;
    }
    const Quantizer& quantizer = model.weight_quantizer(it->second);
    if (!quantizer.enabled()) {
      tensors.emplace_back(name, t);
      weight_points[it->second] = WeightPoint(name, quantizer.bits(), t, at::Tensor());
      continue;
    }
    auto [codes, scale] = WeightCodes(quantizer, t);
    tensors.emplace_back(name, codes);
    tensors.emplace_back(fmt::ScaleName(name), scale);
    weight_points[it->second] = WeightPoint(name, quantizer.bits(), t, scale);
  }
  TORCH_CHECK(weight_points.size() == weight_ids.size(), "ExportQuantizedModel: a weight tap ",
              "does not name a parameter of the model's state dict");

  // Activation ranges, and the manifest's points in forward order.
  json quant_points = json::array();
  json manifest_points = json::array();
  for (const model::TapInfo& info : model.tap_set().taps()) {
    if (info.kind == model::TapKind::kFeature) continue;
    const int id = model.TapId(info.name);
    if (info.kind == model::TapKind::kWeight) {
      const int bits = model.weight_quantizer(id).bits();
      quant_points.push_back({{"name", info.name}, {"kind", fmt::kWeightKind}, {"bits", bits}});
      manifest_points.push_back(weight_points.at(id));
      continue;
    }
    const ActivationQuantizer& q = model.activation_quantizer(id);
    json point = {{"name", info.name}, {"kind", fmt::kActivationKind}, {"bits", q.bits()}};
    // Absent means "uniform": files written before log_sqrt2 existed read as they were written.
    if (ActivationQuantizerName(q) != "uniform") point["quantizer"] = ActivationQuantizerName(q);
    quant_points.push_back(point);
    TORCH_CHECK(!q.enabled() || q.has_range(), "ExportQuantizedModel: activation tap '", info.name,
                "' has no range (calibrate first)");
    if (q.has_range()) {
      auto [min, max] = q.range();
      at::Tensor range = at::empty({2}, at::kFloat);
      range[0] = min;
      range[1] = max;
      tensors.emplace_back(fmt::ActName(info.name, "range"), range);
      point["min"] = range[0].item<double>();
      point["max"] = range[1].item<double>();
    }
    if (q.enabled()) {
      const UniformGrid grid = q.Grid(at::kFloat);
      tensors.emplace_back(fmt::ActName(info.name, "scale"), grid.scale);
      tensors.emplace_back(fmt::ActName(info.name, "zero_point"), grid.zero_point);
      point["scale"] = grid.scale.item<double>();
      point["zero_point"] = grid.zero_point.item<double>();
    }
    manifest_points.push_back(std::move(point));
  }

  metadata["format"] = fmt::kFormat;
  metadata["format_version"] = fmt::kFormatVersion;
  metadata["weight_storage"] = fmt::kWeightStorage;
  metadata["w_bits"] = std::to_string(model.config().weight_bits);
  metadata["a_bits"] = std::to_string(model.config().act_bits);
  metadata["weight_granularity"] = GranularityName(model.config().weight_granularity);
  metadata["act_observer"] = ObserverKindName(model.config().act_observer);
  metadata["input_range"] = InputRangeName(model.config().input_range);
  metadata["quantizer"] = QuantizerKindName(model.config().quantizer);
  metadata["quant_points"] = quant_points.dump();
  metadata["method"] = options.method;
  metadata["num_samples"] = std::to_string(options.num_samples);
  metadata["psaq_version"] = PSAQ_VERSION;
  metadata["tool"] = options.tool;
  metadata["created"] = base::UtcNow();
  // The model file first: a manifest never describes a file that failed to be written.
  model::WriteSafetensors(path, tensors, metadata);

  json manifest = json::object();
  for (const auto& [key, value] : metadata) {
    if (key == "quant_points") continue;
    // The config and preprocess entries are JSON themselves: nest them, for readers.
    const bool nested = key == "config" || key == "preprocess";
    manifest[key] = nested ? json::parse(value) : json(value);
  }
  manifest["file"] = path.substr(path.find_last_of('/') + 1);
  manifest["points"] = std::move(manifest_points);
  base::WriteFileAtomic(ManifestPath(path), manifest.dump(2) + "\n");
}

}  // namespace

void ExportQuantizedModel(const QuantizedModel& model, const std::string& path,
                          const ExportOptions& options) {
  WriteExport(model, model::ConfigToMetadata(model.model().config()), path, options);
}

void ExportQuantizedDetector(const QuantizedDetector& detector, const std::string& path,
                             const ExportOptions& options) {
  std::map<std::string, std::string> metadata =
      detect::DetectorConfigToMetadata(detector.detector().config());
  metadata[export_format::kQuantScopeKey] = DetectorScopeName(detector.scope());
  WriteExport(detector, std::move(metadata), path, options);
}

}  // namespace psaq::quant
