// ConfigFromMetadata / ConfigToMetadata: timm constructor kwargs <-> ModelConfig.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/file_limits.h"

namespace psaq::model {
namespace {

using Json = nlohmann::json;

// How psaq treats each timm constructor kwarg it does not read into its config.
enum class Rule {
  kDefaultOnly,   // changes the architecture: only timm's default value is accepted
  kTrainingOnly,  // dropout / init: no effect on an eval-mode forward, any valid value accepted
  kClassDefault,  // timm's default is a Python class, which JSON cannot spell: every value refused
};

struct Kwarg {
  const char* name;
  Rule rule;
  Json default_value;  // timm's default (None = null); for kClassDefault, the class's name
};

// timm 1.0.29 VisionTransformer.__init__ (vision_transformer.py), minus the kwargs psaq reads.
const std::vector<Kwarg>& ViTOtherKwargs() {
  static const std::vector<Kwarg> kwargs = {
      {"global_pool", Rule::kDefaultOnly, "token"},
      {"qk_norm", Rule::kDefaultOnly, false},
      {"scale_attn_norm", Rule::kDefaultOnly, false},
      {"scale_mlp_norm", Rule::kDefaultOnly, false},
      {"proj_bias", Rule::kDefaultOnly, true},
      {"init_values", Rule::kDefaultOnly, nullptr},
      {"class_token", Rule::kDefaultOnly, true},
      {"pos_embed", Rule::kDefaultOnly, "learn"},
      {"no_embed_class", Rule::kDefaultOnly, false},
      {"reg_tokens", Rule::kDefaultOnly, 0},
      {"pre_norm", Rule::kDefaultOnly, false},
      {"final_norm", Rule::kDefaultOnly, true},
      {"fc_norm", Rule::kDefaultOnly, nullptr},  // None: off for global_pool 'token'
      {"pool_include_prefix", Rule::kDefaultOnly, false},
      {"dynamic_img_size", Rule::kDefaultOnly, false},
      {"dynamic_img_pad", Rule::kDefaultOnly, false},
      {"embed_layer", Rule::kDefaultOnly, nullptr},
      {"embed_norm_layer", Rule::kDefaultOnly, nullptr},
      {"norm_layer", Rule::kDefaultOnly, nullptr},
      {"act_layer", Rule::kDefaultOnly, nullptr},
      {"block_fn", Rule::kDefaultOnly, nullptr},
      {"mlp_layer", Rule::kDefaultOnly, nullptr},
      {"attn_layer", Rule::kDefaultOnly, nullptr},
      {"device", Rule::kDefaultOnly, nullptr},
      {"dtype", Rule::kDefaultOnly, nullptr},
      {"drop_rate", Rule::kTrainingOnly, 0},
      {"pos_drop_rate", Rule::kTrainingOnly, 0},
      {"patch_drop_rate", Rule::kTrainingOnly, 0},
      {"proj_drop_rate", Rule::kTrainingOnly, 0},
      {"attn_drop_rate", Rule::kTrainingOnly, 0},
      {"drop_path_rate", Rule::kTrainingOnly, 0},
      {"weight_init", Rule::kTrainingOnly, ""},
      {"fix_init", Rule::kTrainingOnly, false},
  };
  return kwargs;
}

// timm 1.0.29 SwinTransformer.__init__ (swin_transformer.py), minus the kwargs psaq reads.
// timm swallows unknown kwargs into **kwargs; psaq refuses them instead.
const std::vector<Kwarg>& SwinOtherKwargs() {
  static const std::vector<Kwarg> kwargs = {
      {"global_pool", Rule::kDefaultOnly, "avg"},
      {"head_dim", Rule::kDefaultOnly, nullptr},
      {"always_partition", Rule::kDefaultOnly, false},
      {"strict_img_size", Rule::kDefaultOnly, true},
      {"embed_layer", Rule::kClassDefault, "PatchEmbed"},
      {"norm_layer", Rule::kClassDefault, "nn.LayerNorm"},
      {"device", Rule::kDefaultOnly, nullptr},
      {"dtype", Rule::kDefaultOnly, nullptr},
      {"drop_rate", Rule::kTrainingOnly, 0},
      {"proj_drop_rate", Rule::kTrainingOnly, 0},
      {"attn_drop_rate", Rule::kTrainingOnly, 0},
      {"drop_path_rate", Rule::kTrainingOnly, 0.1},
      {"weight_init", Rule::kTrainingOnly, ""},
  };
  return kwargs;
}

// Reads typed values out of one JSON object, naming `source` and the object in every error.
class Reader {
 public:
  Reader(std::string source, std::string what)
      : source_(std::move(source)), what_(std::move(what)) {}

  [[noreturn]] void Fail(const std::string& reason) const {
    throw std::runtime_error(source_ + ": " + what_ + ": " + reason);
  }
  [[noreturn]] void Bad(const std::string& key, const Json& v, const std::string& expected) const {
    Fail("'" + key + "' must be " + expected + ", got " + v.dump());
  }

  int Int(const std::string& key, const Json& v) const {
    if (!v.is_number_integer()) Bad(key, v, "an integer");
    if (v.is_number_unsigned() ? v.get<uint64_t>() > uint64_t{std::numeric_limits<int>::max()}
                               : (v.get<int64_t>() > std::numeric_limits<int>::max() ||
                                  v.get<int64_t>() < std::numeric_limits<int>::min())) {
      Bad(key, v, "an integer in int range");
    }
    return v.get<int>();
  }
  double Number(const std::string& key, const Json& v) const {
    if (!v.is_number() || !std::isfinite(v.get<double>())) Bad(key, v, "a finite number");
    return v.get<double>();
  }
  bool Bool(const std::string& key, const Json& v) const {
    if (!v.is_boolean()) Bad(key, v, "true or false");
    return v.get<bool>();
  }
  // An int, or a square [n, n] pair (timm accepts both for sizes).
  int Square(const std::string& key, const Json& v) const {
    if (!v.is_array()) return Int(key, v);
    if (v.size() != 2) Bad(key, v, "an integer or a pair [n, n]");
    const int a = Int(key, v[0]);
    if (Int(key, v[1]) != a) Fail("non-square '" + key + "' " + v.dump() + " is not supported");
    return a;
  }
  std::vector<int> IntList(const std::string& key, const Json& v) const {
    if (!v.is_array()) Bad(key, v, "a list of integers");
    std::vector<int> out;
    for (const auto& x : v) out.push_back(Int(key, x));
    return out;
  }
  // A list of in_chans numbers, or a single number / one-element list repeated (as timm does).
  std::vector<double> ChannelList(const std::string& key, const Json& v, int in_chans) const {
    std::vector<double> out;
    if (v.is_number()) {
      out.push_back(Number(key, v));
    } else if (v.is_array()) {
      for (const auto& x : v) out.push_back(Number(key, x));
    } else {
      Bad(key, v, "a number or a list of numbers");
    }
    if (out.size() == 1) out.assign(static_cast<size_t>(std::max(in_chans, 1)), out[0]);
    if (out.size() != static_cast<size_t>(in_chans)) {
      Bad(key, v, "1 or in_chans (" + std::to_string(in_chans) + ") values");
    }
    return out;
  }

  // Checks a kwarg psaq does not read into its config against `rule`.
  void Other(const Kwarg& k, const Json& v) const {
    if (k.rule == Rule::kTrainingOnly) {
      if (k.default_value.is_number()) {
        const double p = Number(k.name, v);
        if (p < 0 || p >= 1) Bad(k.name, v, "a rate in [0, 1)");
      } else if (k.default_value.is_boolean()) {
        Bool(k.name, v);
      } else if (!v.is_string()) {
        Bad(k.name, v, "a string");
      }
      return;
    }
    if (k.rule == Rule::kClassDefault || v != k.default_value) {
      Fail("unsupported timm kwarg '" + std::string(k.name) + "'=" + v.dump() +
           " (psaq implements only timm's default, " +
           (k.rule == Rule::kClassDefault ? k.default_value.get<std::string>()
                                          : k.default_value.dump()) +
           ")");
    }
  }

 private:
  std::string source_;
  std::string what_;
};

Json ParseObject(const std::map<std::string, std::string>& metadata, const std::string& key,
                 const std::string& source) {
  // Bounded before parsing: the error messages below dump values, recursively.
  CheckJsonDepth(metadata.at(key), source + ": metadata \"" + key + "\"");
  Json v;
  try {
    v = Json::parse(metadata.at(key));
  } catch (const Json::exception& e) {
    throw std::runtime_error(source + ": metadata \"" + key + "\" is not valid JSON: " + e.what());
  }
  if (!v.is_object()) {
    throw std::runtime_error(source + ": metadata \"" + key +
                             "\" is not a JSON object: " + v.dump());
  }
  return v;
}

// Reads `config` into the fields of `setters`; every other key must be one of `others`.
using Setter = std::function<void(const std::string& key, const Json& value)>;
void ReadKwargs(const Json& config, const Reader& r, const std::map<std::string, Setter>& setters,
                const std::vector<Kwarg>& others, const std::string& timm_class) {
  for (const auto& [key, value] : config.items()) {
    if (auto s = setters.find(key); s != setters.end()) {
      s->second(key, value);
      continue;
    }
    auto it = std::find_if(others.begin(), others.end(),
                           [&key = key](const Kwarg& k) { return key == k.name; });
    if (it == others.end()) r.Fail("unknown timm " + timm_class + " kwarg '" + key + "'");
    r.Other(*it, value);
  }
}

// "norm_eps" is a psaq extension (see config.h).
void ReadViT(const Json& config, const Reader& r, ViTConfig& c) {
  using K = std::string;
  ReadKwargs(config, r,
             {{"img_size", [&](const K& k, const Json& v) { c.img_size = r.Square(k, v); }},
              {"patch_size", [&](const K& k, const Json& v) { c.patch_size = r.Square(k, v); }},
              {"in_chans", [&](const K& k, const Json& v) { c.in_chans = r.Int(k, v); }},
              {"num_classes", [&](const K& k, const Json& v) { c.num_classes = r.Int(k, v); }},
              {"embed_dim", [&](const K& k, const Json& v) { c.embed_dim = r.Int(k, v); }},
              {"depth", [&](const K& k, const Json& v) { c.depth = r.Int(k, v); }},
              {"num_heads", [&](const K& k, const Json& v) { c.num_heads = r.Int(k, v); }},
              {"mlp_ratio", [&](const K& k, const Json& v) { c.mlp_ratio = r.Number(k, v); }},
              {"qkv_bias", [&](const K& k, const Json& v) { c.qkv_bias = r.Bool(k, v); }},
              {"norm_eps", [&](const K& k, const Json& v) { c.norm_eps = r.Number(k, v); }}},
             ViTOtherKwargs(), "VisionTransformer");
}

void ReadSwin(const Json& config, const Reader& r, SwinConfig& c) {
  using K = std::string;
  ReadKwargs(config, r,
             {{"img_size", [&](const K& k, const Json& v) { c.img_size = r.Square(k, v); }},
              {"patch_size", [&](const K& k, const Json& v) { c.patch_size = r.Square(k, v); }},
              {"in_chans", [&](const K& k, const Json& v) { c.in_chans = r.Int(k, v); }},
              {"num_classes", [&](const K& k, const Json& v) { c.num_classes = r.Int(k, v); }},
              {"embed_dim", [&](const K& k, const Json& v) { c.embed_dim = r.Int(k, v); }},
              {"depths", [&](const K& k, const Json& v) { c.depths = r.IntList(k, v); }},
              {"num_heads", [&](const K& k, const Json& v) { c.num_heads = r.IntList(k, v); }},
              {"window_size", [&](const K& k, const Json& v) { c.window_size = r.Square(k, v); }},
              {"mlp_ratio", [&](const K& k, const Json& v) { c.mlp_ratio = r.Number(k, v); }},
              {"qkv_bias", [&](const K& k, const Json& v) { c.qkv_bias = r.Bool(k, v); }},
              {"norm_eps", [&](const K& k, const Json& v) { c.norm_eps = r.Number(k, v); }}},
             SwinOtherKwargs(), "SwinTransformer");
}

void ReadPreprocess(const Json& json, const Reader& r, int img_size, int in_chans,
                    PreprocessConfig& p) {
  for (const auto& [key, v] : json.items()) {
    if (key == "mean") {
      p.mean = r.ChannelList(key, v, in_chans);
    } else if (key == "std") {
      p.std = r.ChannelList(key, v, in_chans);
    } else if (key == "crop_pct") {
      p.crop_pct = r.Number(key, v);
    } else if (key == "interpolation") {
      if (!v.is_string()) r.Bad(key, v, "a string");
      p.interpolation = v.get<std::string>();
    } else if (key == "crop_mode") {
      if (v != "center") r.Fail("unsupported crop_mode " + v.dump() + " (only \"center\")");
    } else if (key == "input_size") {
      // timm spells it [C, H, W]; psaq also writes a plain n.
      const bool triple = v.is_array() && v.size() == 3;
      const int size = triple ? r.Square(key, Json{v[1], v[2]}) : r.Int(key, v);
      if (size != img_size || (triple && r.Int(key, v[0]) != in_chans)) {
        r.Fail("input_size " + v.dump() + " does not match the model's img_size " +
               std::to_string(img_size) + " / in_chans " + std::to_string(in_chans));
      }
    } else {
      r.Fail("unknown key '" + key + "'");
    }
  }
}

}  // namespace

ModelConfig ConfigFromMetadata(const std::map<std::string, std::string>& metadata,
                               const std::string& source) {
  ModelConfig c;
  auto arch = metadata.find("arch");
  if (arch == metadata.end()) throw std::runtime_error(source + ": metadata has no \"arch\"");
  if (arch->second == "vit") {
    c.arch = Arch::kViT;
  } else if (arch->second == "swin") {
    c.arch = Arch::kSwin;
  } else {
    throw std::runtime_error(source + ": metadata \"arch\" is '" + arch->second +
                             "', expected \"vit\" or \"swin\"");
  }
  if (auto name = metadata.find("name"); name != metadata.end()) c.name = name->second;
  if (metadata.count("config") == 0) {
    throw std::runtime_error(source + ": metadata has no \"config\"");
  }

  const Json config = ParseObject(metadata, "config", source);
  const Reader config_reader(source, "config");
  if (c.arch == Arch::kViT) {
    ReadViT(config, config_reader, c.vit);
  } else {
    ReadSwin(config, config_reader, c.swin);
  }

  if (c.in_chans() < 1) {
    throw std::runtime_error(source + ": invalid config: in_chans must be positive, got " +
                             std::to_string(c.in_chans()));
  }
  // Default preprocessing: the preset's when "name" is a preset of this arch, else ImageNet
  // mean/std, crop 0.9, bicubic; for in_chans != 3 the channel average of the mean/std.
  if (IsPreset(c.name) && PresetConfig(c.name).arch == c.arch) {
    c.preprocess = PresetConfig(c.name).preprocess;
  }
  const auto average = [&](const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    return std::vector<double>(static_cast<size_t>(std::max(c.in_chans(), 1)), sum / v.size());
  };
  if (c.in_chans() != 3) {
    c.preprocess.mean = average(c.preprocess.mean);
    c.preprocess.std = average(c.preprocess.std);
  }
  if (metadata.count("preprocess")) {
    ReadPreprocess(ParseObject(metadata, "preprocess", source), Reader(source, "preprocess"),
                   c.img_size(), c.in_chans(), c.preprocess);
  }
  try {
    ValidateConfig(c);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(source + ": invalid config: " + e.what());
  }
  return c;
}

std::map<std::string, std::string> ConfigToMetadata(const ModelConfig& c) {
  nlohmann::ordered_json config;
  if (c.arch == Arch::kViT) {
    const ViTConfig& v = c.vit;
    config = {
        {"img_size", v.img_size},       {"patch_size", v.patch_size}, {"in_chans", v.in_chans},
        {"num_classes", v.num_classes}, {"embed_dim", v.embed_dim},   {"depth", v.depth},
        {"num_heads", v.num_heads},     {"mlp_ratio", v.mlp_ratio},   {"qkv_bias", v.qkv_bias}};
    if (v.norm_eps != ViTConfig().norm_eps) config["norm_eps"] = v.norm_eps;
  } else {
    const SwinConfig& s = c.swin;
    config = {{"img_size", s.img_size},   {"patch_size", s.patch_size},
              {"in_chans", s.in_chans},   {"num_classes", s.num_classes},
              {"embed_dim", s.embed_dim}, {"depths", s.depths},
              {"num_heads", s.num_heads}, {"window_size", s.window_size},
              {"mlp_ratio", s.mlp_ratio}, {"qkv_bias", s.qkv_bias}};
    if (s.norm_eps != SwinConfig().norm_eps) config["norm_eps"] = s.norm_eps;
  }
  const PreprocessConfig& p = c.preprocess;
  const nlohmann::ordered_json preprocess = {{"mean", p.mean},
                                             {"std", p.std},
                                             {"crop_pct", p.crop_pct},
                                             {"interpolation", p.interpolation},
                                             {"input_size", c.img_size()}};
  std::map<std::string, std::string> metadata = {
      {"arch", ArchName(c.arch)}, {"config", config.dump()}, {"preprocess", preprocess.dump()}};
  if (!c.name.empty()) metadata["name"] = c.name;
  return metadata;
}

}  // namespace psaq::model
