// The reader half of quant/export.h: validates everything before building anything.
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/accumulate.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "model/detect/detector_config.h"
#include "model/detect/load_detector.h"
#include "model/file_limits.h"
#include "model/registry.h"
#include "model/safetensors.h"
#include "model/state_dict.h"
#include "quant/export.h"
#include "quant/export_check.h"
#include "quant/export_format.h"
#include "quant/granularity.h"
#include "quant/uniform.h"

namespace psaq::quant {
namespace {

using json = nlohmann::json;
namespace fmt = export_format;

struct Point {
  std::string name;
  std::string kind;
  int bits = 0;
  std::string quantizer = "uniform";  // an activation's ActivationQuantizerName
};

class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path), file_(model::ReadSafetensors(path)) {
    // One index, so that each lookup is O(log n), not a scan of up to kMaxTensors names.
    for (const auto& [name, t] : file_.tensors) by_name_.emplace(name, &t);
  }

  [[noreturn]] void Fail(const std::string& problem) const {
    throw std::runtime_error(path_ + ": " + problem);
  }

  const std::string& Meta(const std::string& key) const {
    auto it = file_.metadata.find(key);
    if (it == file_.metadata.end()) Fail("metadata '" + key + "' is missing");
    return it->second;
  }

  int Bits(const std::string& text, const std::string& what) const {
    return ParseBits(text, what, path_);
  }

  std::vector<Point> Points() const {
    json points;
    model::CheckJsonDepth(Meta("quant_points"), path_ + ": metadata 'quant_points'");
    try {
      points = json::parse(Meta("quant_points"));
    } catch (const json::exception& e) {
      Fail(std::string("metadata 'quant_points' is not valid JSON: ") + e.what());
    }
    if (!points.is_array()) Fail("metadata 'quant_points' is not a JSON array");
    std::vector<Point> out;
    for (const json& p : points) {
      if (!p.is_object() || !p.contains("name") || !p["name"].is_string() || !p.contains("kind") ||
          !p["kind"].is_string() || !p.contains("bits") || !p["bits"].is_number_integer()) {
        Fail("metadata 'quant_points' entry " + p.dump() + " needs string name, kind, int bits");
      }
      Point point{p["name"].get<std::string>(), p["kind"].get<std::string>(), 0};
      point.bits =
          Bits(std::to_string(p["bits"].get<int64_t>()), "quant point '" + point.name + "' bits");
      if (p.contains("quantizer")) {
        if (!p["quantizer"].is_string())
          Fail("quant point '" + point.name + "': quantizer must be a string");
        point.quantizer = p["quantizer"].get<std::string>();
      }
      out.push_back(std::move(point));
    }
    return out;
  }

  // The tensor `name`, marked as used; fails when absent or of the wrong dtype.
  const at::Tensor& Take(const std::string& name, at::ScalarType dtype) {
    const at::Tensor& t = TakeAny(name);
    if (t.scalar_type() != dtype) {
      Fail("tensor '" + name + "' has dtype " + std::string(c10::toString(t.scalar_type())) +
           ", expected " + c10::toString(dtype));
    }
    return t;
  }
  const at::Tensor& TakeAny(const std::string& name) {
    const auto it = by_name_.find(name);
    if (it == by_name_.end()) Fail("tensor '" + name + "' is missing");
    used_.insert(name);
    return *it->second;
  }
  bool Has(const std::string& name) const { return by_name_.count(name) != 0; }

  void FailOnUnused() const {
    for (const auto& [name, t] : file_.tensors) {
      if (used_.count(name) == 0) Fail("unexpected tensor '" + name + "' (not part of the model)");
    }
  }

  const std::map<std::string, std::string>& metadata() const { return file_.metadata; }
  const model::SafetensorsFile& file() const { return file_; }

 private:
  std::string path_;
  model::SafetensorsFile file_;
  std::map<std::string, const at::Tensor*> by_name_;
  std::set<std::string> used_;
};

std::string Shape(const at::Tensor& t) { return c10::str(t.sizes()); }

// The steps of ImportQuantizedModel, in the order it runs them (which fixes the error a file with
// several problems reports).

// Checks the format metadata and returns the file's QuantConfig without its per-point overrides
// (MatchPoints adds those).
QuantConfig ReadConfig(const Reader& r) {
  if (r.metadata().count("format") == 0 || r.Meta("format") != fmt::kFormat) {
    r.Fail(std::string("not a psaq quantized export (metadata 'format' is not '") + fmt::kFormat +
           "')");
  }
  if (r.Meta("format_version") != fmt::kFormatVersion) {
    r.Fail("unsupported format_version '" + r.Meta("format_version") +
           "' (this reader: " + fmt::kFormatVersion + ")");
  }
  if (r.Meta("weight_storage") != fmt::kWeightStorage) {
    r.Fail("unsupported weight_storage '" + r.Meta("weight_storage") + "'");
  }
  QuantConfig config;
  config.weight_bits = r.Bits(r.Meta("w_bits"), "metadata w_bits");
  config.act_bits = r.Bits(r.Meta("a_bits"), "metadata a_bits");
  // The parsers throw std::invalid_argument without the path; rethrow with it.
  try {
    config.weight_granularity = ParseGranularity(r.Meta("weight_granularity"));
    config.act_observer = ParseObserverKind(r.Meta("act_observer"));
    // Files written before input_range existed lack the key: they keep the default
    // (calibrated), which is what they were quantized with.
    if (r.metadata().count("input_range") != 0) {
      config.input_range = ParseInputRange(r.Meta("input_range"));
    }
    // Likewise quantizer (psaq). The reparameterisation is already in the stored weights and
    // LayerNorm parameters; repq only changes which points carry which quantizer.
    if (r.metadata().count("quantizer") != 0) {
      config.quantizer = ParseQuantizerKind(r.Meta("quantizer"));
    }
  } catch (const std::invalid_argument& e) {
    r.Fail(e.what());
  }
  return config;
}

// The quantization points must be the model's weight and activation taps, in order (feature taps
// are not quantized and not listed). A point whose bits differ from its kind's default becomes
// a bits override in `config`. Returns the tap id of each point.
// `scope` (null: all) marks the taps whose default is the config's bits; the others default to
// 32 bits (a detector's scope, quant/quantized_detector.h).
std::vector<int> MatchPoints(const Reader& r, const model::TapSet& taps,
                             const std::vector<Point>& points, QuantConfig& config,
                             const TapScopePredicate& scope = nullptr) {
  std::vector<int> ids;
  for (const model::TapInfo& info : taps.taps()) {
    if (info.kind == model::TapKind::kFeature) continue;
    const size_t i = ids.size();
    // Exports written before the post-softmax tap existed do not list it; under psaq it is
    // float anyway (quant/quantized_model.h IsSoftmaxTap), so they read as they were written.
    if (IsSoftmaxTap(info.name) && config.quantizer == QuantizerKind::kPsaq &&
        (i >= points.size() || points[i].name != info.name)) {
      continue;
    }
    const std::string kind =
        info.kind == model::TapKind::kWeight ? fmt::kWeightKind : fmt::kActivationKind;
    if (i >= points.size() || points[i].name != info.name || points[i].kind != kind) {
      r.Fail("quant_points do not match the model's taps at #" + std::to_string(i) +
             ": the model has " + kind + " '" + info.name + "', the file " +
             (i < points.size() ? points[i].kind + " '" + points[i].name + "'" : "nothing"));
    }
    const int default_bits = scope && !scope(info)          ? kBitsOff
                             : kind == fmt::kWeightKind ? config.weight_bits
                             : IsSoftmaxTap(info.name) && config.quantizer == QuantizerKind::kPsaq
                                 ? kBitsOff
                                 : config.act_bits;
    if (points[i].bits != default_bits) config.bits_overrides[info.name] = points[i].bits;
    ids.push_back(taps.Find(info.name));
  }
  if (points.size() != ids.size()) {
    r.Fail("quant_points lists " + std::to_string(points.size()) + " points, the model has " +
           std::to_string(ids.size()));
  }
  return ids;
}

// A quantized weight as stored: int8 codes and its per-group float32 scales.
struct FrozenWeight {
  int id = 0;        // the weight's tap
  at::Tensor codes;  // int8, the weight's shape
  at::Tensor scale;  // float32, the granularity's parameter shape
};

// The codes of quantized weight `name` (model shape `ref`) at `bits`, checked, with their scale.
FrozenWeight TakeQuantizedWeight(Reader& r, const std::string& name, const at::Tensor& ref,
                                 int bits, const Granularity& granularity) {
  const at::Tensor& codes = r.Take(name, at::kChar);
  if (codes.sizes() != ref.sizes()) {
    r.Fail("tensor '" + name + "' has shape " + Shape(codes) + ", the model's is " + Shape(ref));
  }
  // A code outside the bit width's range would dequantize to a weight the quantizer can never
  // produce; such a file was not written by psaq at these bits.
  const int64_t lo = codes.numel() > 0 ? codes.min().item<int64_t>() : 0;
  const int64_t hi = codes.numel() > 0 ? codes.max().item<int64_t>() : 0;
  if (lo < SymmetricQMin(bits) || hi > SymmetricQMax(bits)) {
    r.Fail("tensor '" + name + "' holds integer codes in [" + std::to_string(lo) + ", " +
           std::to_string(hi) + "], outside the " + std::to_string(bits) + "-bit range [" +
           std::to_string(SymmetricQMin(bits)) + ", " + std::to_string(SymmetricQMax(bits)) + "]");
  }
  // Scales are stored flat ([groups]); the grid needs them in the granularity's broadcast shape.
  const std::vector<int64_t> param_shape = granularity.ParamShape(ref.sizes());
  const at::Tensor& scale = r.Take(fmt::ScaleName(name), at::kFloat);
  const int64_t groups = c10::multiply_integers(param_shape);
  if (scale.dim() != 1 || scale.size(0) != groups) {
    r.Fail("tensor '" + fmt::ScaleName(name) + "' has shape " + Shape(scale) + ", expected [" +
           std::to_string(groups) + "]");
  }
  CheckScaleRange(scale, fmt::ScaleName(name), r.file().source);
  return FrozenWeight{0, codes, scale.reshape(param_shape)};
}

// The model's float state and the frozen quantized weights.
struct WeightState {
  std::map<std::string, at::Tensor> state;  // every model tensor, as LoadStateDict takes it
  std::vector<FrozenWeight> frozen;         // in state-dict order
};

// Reads every tensor of the model's state dict: stored floats as they are (biases, norms,
// 32-bit weights), quantized weights as their dequantized codes q * s. Those are only the float
// view of the model: the quantized forward uses the frozen codes and scales, because
// requantizing q * s would not give the scales back (quant/weight_quantizer.h).
WeightState ReadWeights(Reader& r, const torch::nn::Module& net, const model::TapSet& taps,
                        const std::vector<Point>& points, const QuantConfig& config) {
  std::map<std::string, size_t> point_of;
  for (size_t i = 0; i < points.size(); ++i) point_of[points[i].name] = i;
  const std::unique_ptr<Granularity> granularity = MakeGranularity(config.weight_granularity);
  WeightState out;
  for (const auto& [name, ref] : model::StateDict(net)) {
    auto it = point_of.find(name);
    const bool weight = it != point_of.end() && points[it->second].kind == fmt::kWeightKind;
    if (!weight || points[it->second].bits == kBitsOff) {
      const at::Tensor& t = r.TakeAny(name);
      if (weight && !t.is_floating_point()) r.Fail("32-bit weight '" + name + "' is not floating");
      out.state[name] = t;
      continue;
    }
    const int bits = points[it->second].bits;
    FrozenWeight w = TakeQuantizedWeight(r, name, ref, bits, *granularity);
    UniformGrid grid;
    grid.scale = w.scale;
    grid.qmin = SymmetricQMin(bits);
    grid.qmax = SymmetricQMax(bits);
    out.state[name] = DequantizeFromGrid(w.codes, grid);
    w.id = taps.Find(name);
    out.frozen.push_back(std::move(w));
  }
  return out;
}

// A calibrated activation range [min, max] of tap `id`.
struct ActivationRange {
  int id = 0;
  double min = 0;
  double max = 0;
};

// The activation points' ranges. The stored scale and zero point are redundant (the range
// determines them): they must be exactly what AsymmetricGrid gives, so a file whose numbers
// disagree is refused rather than silently requantized. A 32-bit point may still carry its
// observed range; it is kept when present.
std::vector<ActivationRange> ReadActivationRanges(Reader& r, const std::vector<Point>& points,
                                                  const std::vector<int>& ids) {
  std::vector<ActivationRange> ranges;
  for (size_t i = 0; i < points.size(); ++i) {
    const Point& p = points[i];
    if (p.kind != fmt::kActivationKind) continue;
    const std::string range_name = fmt::ActName(p.name, "range");
    if (p.bits == kBitsOff && !r.Has(range_name)) continue;
    const at::Tensor& range = r.Take(range_name, at::kFloat);
    if (range.numel() != 2) r.Fail("tensor '" + range_name + "' must hold [min, max]");
    const double min = range[0].item<double>();
    const double max = range[1].item<double>();
    if (!std::isfinite(min) || !std::isfinite(max) || min > max) {
      r.Fail("tensor '" + range_name + "' is not a finite range with min <= max");
    }
    ranges.push_back({ids[i], min, max});
    if (p.bits == kBitsOff) continue;
    // From the stored float32 range: the exporter's grid came from
    // ActivationQuantizer::Grid(kFloat), which rounds its range to float32 the same way, so the
    // comparison below can be exact.
    const UniformGrid grid = AsymmetricGrid(range[0], range[1], p.bits);
    // A finite range of +-3e38 gives an infinite scale, which would match its stored copy.
    CheckScaleRange(grid.scale, fmt::ActName(p.name, "scale"), r.file().source);
    for (const char* field : {"scale", "zero_point"}) {
      const std::string name = fmt::ActName(p.name, field);
      const at::Tensor& stored = r.Take(name, at::kFloat);
      const at::Tensor& expected = field[0] == 's' ? grid.scale : grid.zero_point;
      if (stored.numel() != 1 || !at::equal(stored.reshape({}), expected)) {
        r.Fail("tensor '" + name + "' = " + c10::str(stored.reshape({-1})) +
               " does not match its range [" + std::to_string(min) + ", " + std::to_string(max) +
               "] at " + std::to_string(p.bits) + " bits (expected " +
               std::to_string(expected.item<double>()) + ")");
      }
    }
  }
  return ranges;
}

// Freezes the stored weights, checks each point's quantizer kind, sets the ranges.
void FinishImport(const Reader& r, TapQuantizers& quantized_bank, const WeightState& weights,
                  const std::vector<Point>& points, const std::vector<int>& ids,
                  const std::vector<ActivationRange>& ranges, const QuantConfig& config) {
  TapQuantizers* quantized = &quantized_bank;
  for (const FrozenWeight& w : weights.frozen) quantized->FreezeWeight(w.id, w.codes, w.scale);
  // The file's quantizer per point must be the one its config builds (a log_sqrt2 point in a
  // psaq file, or a repq file without one, was not written by psaq).
  for (size_t i = 0; i < points.size(); ++i) {
    if (points[i].kind != fmt::kActivationKind) continue;
    const std::string built = ActivationQuantizerName(quantized->activation_quantizer(ids[i]));
    if (points[i].quantizer != built) {
      r.Fail("quant point '" + points[i].name + "' has quantizer '" + points[i].quantizer +
             "', but a " + QuantizerKindName(config.quantizer) + " export quantizes it with '" +
             built + "'");
    }
  }
  for (const ActivationRange& a : ranges) {
    quantized->activation_quantizer(a.id).SetRange(a.min, a.max);
  }
}

}  // namespace

ImportedModel ImportQuantizedModel(const std::string& path) {
  at::NoGradGuard no_grad;
  Reader r(path);
  QuantConfig config = ReadConfig(r);
  const std::vector<Point> points = r.Points();
  if (IsQuantizedDetectorExport(r.metadata())) {
    r.Fail("a quantized detector export (metadata 'arch' = '" +
           std::string(detect::kMaskRcnnSwinArch) + "'); use the detector commands on it");
  }
  const model::ModelConfig model_config = model::ConfigFromMetadata(r.metadata(), path);
  CheckModelFitsExport(model_config, r.file());  // before anything is allocated for the model
  const model::ModelPtr net = model::CreateModel(model_config);
  const std::vector<int> ids = MatchPoints(r, net->taps(), points, config);
  WeightState weights = ReadWeights(r, *net, net->taps(), points, config);
  const std::vector<ActivationRange> ranges = ReadActivationRanges(r, points, ids);
  // Every tensor is checked, and none left over, before any is loaded into the model.
  r.FailOnUnused();

  model::LoadStateDict(*net, weights.state, path);
  auto quantized = std::make_unique<QuantizedModel>(net, config);
  FinishImport(r, *quantized, weights, points, ids, ranges, config);
  quantized->SetMode(QuantizedModel::Mode::kQuantized);
  return ImportedModel{std::move(quantized), r.metadata()};
}

bool IsQuantizedDetectorExport(const std::map<std::string, std::string>& metadata) {
  const auto format = metadata.find("format");
  const auto arch = metadata.find("arch");
  return format != metadata.end() && format->second == fmt::kFormat && arch != metadata.end() &&
         arch->second == detect::kMaskRcnnSwinArch;
}

ImportedDetector ImportQuantizedDetector(const std::string& path) {
  at::NoGradGuard no_grad;
  Reader r(path);
  QuantConfig config = ReadConfig(r);
  if (!IsQuantizedDetectorExport(r.metadata())) {
    r.Fail("not a quantized detector export (metadata 'arch' is not '" +
           std::string(detect::kMaskRcnnSwinArch) + "')");
  }
  if (config.quantizer != QuantizerKind::kPsaq) {
    r.Fail("quantizer '" + QuantizerKindName(config.quantizer) + "' is not supported for detectors");
  }
  DetectorScope scope = DetectorScope::kAll;
  try {
    scope = ParseDetectorScope(r.Meta(fmt::kQuantScopeKey));
  } catch (const std::invalid_argument& e) {
    r.Fail(std::string("metadata '") + fmt::kQuantScopeKey + "': " + e.what());
  }
  const std::vector<Point> points = r.Points();
  detect::DetectorConfig det_config = detect::DetectorConfigFromMetadata(r.metadata(), path);
  // Before anything is allocated for the detector: the config may not describe more values
  // than the file holds.
  double elements = 0;
  for (const auto& [name, t] : r.file().tensors) elements += static_cast<double>(t.numel());
  const double expected = detect::DetectorParameterCount(det_config);
  if (expected > elements) {
    r.Fail("the config describes " + std::to_string(static_cast<int64_t>(expected)) +
           " parameter values but the file holds only " +
           std::to_string(static_cast<int64_t>(elements)));
  }
  const detect::DetectorPtr net = detect::CreateDetector(det_config);
  const TapScopePredicate in_scope = [scope](const model::TapInfo& info) {
    return InDetectorScope(info.name, scope);
  };
  const std::vector<int> ids = MatchPoints(r, net->taps(), points, config, in_scope);
  WeightState weights = ReadWeights(r, *net, net->taps(), points, config);
  const std::vector<ActivationRange> ranges = ReadActivationRanges(r, points, ids);
  r.FailOnUnused();

  model::LoadStateDict(*net, weights.state, path);
  net->eval();
  auto quantized = std::make_unique<QuantizedDetector>(net, config, scope);
  FinishImport(r, *quantized, weights, points, ids, ranges, config);
  quantized->SetMode(QuantizedDetector::Mode::kQuantized);
  return ImportedDetector{std::move(quantized), r.metadata()};
}

}  // namespace psaq::quant
