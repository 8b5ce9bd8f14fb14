#include "model/detect/detector_config.h"

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/file_limits.h"

namespace psaq::detect {
namespace {

using Json = nlohmann::json;

[[noreturn]] void Invalid(const std::string& field, const std::string& why) {
  throw std::invalid_argument("DetectorConfig: " + field + " " + why);
}

template <typename T>
std::string Str(const std::vector<T>& v) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < v.size(); ++i) s << (i ? ", " : "") << v[i];
  s << "]";
  return s.str();
}

void Positive(const std::string& field, double v) {
  if (!(v > 0) || !std::isfinite(v)) Invalid(field, "must be positive, got " + std::to_string(v));
}

void Unit(const std::string& field, double v, bool closed_right) {
  if (!(v >= 0 && (closed_right ? v <= 1 : v < 1))) {
    Invalid(field, std::string("must be in [0, 1") + (closed_right ? "]" : ")") + ", got " +
                       std::to_string(v));
  }
}

// One config field: how it is read from JSON and written back.
struct Field {
  const char* name;
  std::function<void(const Json&)> read;  // throws std::runtime_error via `bad`
  std::function<Json()> write;
};

}  // namespace

int DetectorConfig::size_divisor() const {
  return patch_size << (depths.empty() ? 0 : static_cast<int>(depths.size()) - 1);
}

double DetectorParameterCount(const DetectorConfig& c) {
  const double C0 = c.embed_dim, P = c.patch_size, W = c.window_size, r = c.mlp_ratio;
  double n = C0 * c.in_chans * P * P + C0 + 2 * C0;  // patch_embed.projection + norm
  for (size_t i = 0; i < c.depths.size() && i < c.num_heads.size(); ++i) {
    const double C = C0 * std::pow(2.0, static_cast<double>(i));
    const double block = 4 * C                                         // norm1, norm2
                         + (2 * W - 1) * (2 * W - 1) * c.num_heads[i]  // bias table
                         + 3 * C * C + (c.qkv_bias ? 3 * C : 0)        // qkv
                         + C * C + C                                   // proj
                         + 2 * r * C * C + r * C + C;                  // ffn
    n += c.depths[i] * block + 2 * C;                                  // blocks, norm<i>
    if (i + 1 < c.depths.size()) n += 8 * C + 8 * C * C;               // downsample
    n += c.fpn_channels * C + c.fpn_channels;                          // lateral conv
    n += 9.0 * c.fpn_channels * c.fpn_channels + c.fpn_channels;       // fpn conv
  }
  const double F = c.fpn_channels, R = c.rpn_feat_channels, A = c.num_anchors();
  n += 9 * R * F + R + A * R + A + 4 * A * R + 4 * A;  // rpn_head
  const double D = c.fc_out_channels, K = c.num_classes, S = c.bbox_roi_size;
  n += (K + 1) * D + K + 1 + 4 * K * D + 4 * K + D * F * S * S + D + D * D + D;  // bbox_head
  const double M = c.mask_conv_channels;
  n += 9 * M * F + M + (c.mask_num_convs - 1) * (9 * M * M + M)  // mask convs
       + 4 * M * M + M + K * M + K;                              // upsample, conv_logits
  return n;
}

void ValidateDetectorConfig(const DetectorConfig& c) {
  Positive("in_chans", c.in_chans);
  Positive("patch_size", c.patch_size);
  Positive("embed_dim", c.embed_dim);
  Positive("window_size", c.window_size);
  Positive("mlp_ratio", c.mlp_ratio);
  Positive("norm_eps", c.norm_eps);
  if (c.depths.empty() || c.depths.size() > 8 || c.depths.size() != c.num_heads.size()) {
    Invalid("depths/num_heads", "must be non-empty lists of equal length (at most 8), got " +
                                    Str(c.depths) + " / " + Str(c.num_heads));
  }
  for (size_t s = 0; s < c.depths.size(); ++s) {
    Positive("depths[" + std::to_string(s) + "]", c.depths[s]);
    Positive("num_heads[" + std::to_string(s) + "]", c.num_heads[s]);
    if (c.stage_channels(static_cast<int>(s)) % c.num_heads[s] != 0) {
      Invalid("num_heads[" + std::to_string(s) + "]",
              std::to_string(c.num_heads[s]) + " does not divide the stage's channels " +
                  std::to_string(c.stage_channels(static_cast<int>(s))));
    }
  }
  Positive("fpn_channels", c.fpn_channels);
  if (c.num_outs < c.num_stages()) {
    Invalid("num_outs", std::to_string(c.num_outs) + " is below the number of stages " +
                            std::to_string(c.num_stages()));
  }
  Positive("rpn_feat_channels", c.rpn_feat_channels);
  if (c.anchor_scales.empty() || c.anchor_ratios.empty()) {
    Invalid("anchor_scales/anchor_ratios", "must be non-empty");
  }
  for (double v : c.anchor_scales) Positive("anchor_scales", v);
  for (double v : c.anchor_ratios) Positive("anchor_ratios", v);
  if (static_cast<int>(c.anchor_strides.size()) != c.num_outs) {
    Invalid("anchor_strides", Str(c.anchor_strides) + " must hold num_outs (" +
                                  std::to_string(c.num_outs) + ") values");
  }
  for (int v : c.anchor_strides) Positive("anchor_strides", v);
  if (c.rpn_target_stds.size() != 4) Invalid("rpn_target_stds", "must hold 4 values");
  for (double v : c.rpn_target_stds) Positive("rpn_target_stds", v);
  if (c.rcnn_target_stds.size() != 4) Invalid("rcnn_target_stds", "must hold 4 values");
  for (double v : c.rcnn_target_stds) Positive("rcnn_target_stds", v);
  Positive("num_classes", c.num_classes);
  Positive("fc_out_channels", c.fc_out_channels);
  Positive("mask_num_convs", c.mask_num_convs);
  Positive("mask_conv_channels", c.mask_conv_channels);
  Positive("bbox_roi_size", c.bbox_roi_size);
  Positive("mask_roi_size", c.mask_roi_size);
  if (c.sampling_ratio < 0) Invalid("sampling_ratio", "must be >= 0 (0 = adaptive)");
  if (static_cast<int>(c.roi_strides.size()) != c.num_stages()) {
    Invalid("roi_strides", Str(c.roi_strides) + " must hold one stride per stage (" +
                               std::to_string(c.num_stages()) + ")");
  }
  for (int v : c.roi_strides) Positive("roi_strides", v);
  Positive("finest_scale", c.finest_scale);
  Positive("rpn_nms_pre", c.rpn_nms_pre);
  Positive("rpn_nms_iou", c.rpn_nms_iou);
  Unit("rpn_nms_iou", c.rpn_nms_iou, true);
  Positive("rpn_max_per_img", c.rpn_max_per_img);
  if (!(c.rpn_min_bbox_size >= 0)) Invalid("rpn_min_bbox_size", "must be >= 0");
  Unit("score_thr", c.score_thr, false);
  Positive("rcnn_nms_iou", c.rcnn_nms_iou);
  Unit("rcnn_nms_iou", c.rcnn_nms_iou, true);
  Positive("max_per_img", c.max_per_img);
  Unit("mask_thr", c.mask_thr, false);
  if (static_cast<int>(c.mean.size()) != c.in_chans ||
      static_cast<int>(c.std.size()) != c.in_chans) {
    Invalid("mean/std", "must hold in_chans (" + std::to_string(c.in_chans) + ") values each");
  }
  for (double v : c.std) Positive("std", v);
  // Sanity bounds, checked after the consistency checks above.
  const auto at_most = [](const std::string& field, double v, double limit) {
    if (v > limit) {
      Invalid(field, std::to_string(static_cast<int64_t>(v)) + " exceeds the limit " +
                         std::to_string(static_cast<int64_t>(limit)));
    }
  };
  at_most("stage channels (embed_dim * 2^(stages-1))",
          static_cast<double>(c.embed_dim) * std::pow(2.0, c.num_stages() - 1), 65536);
  at_most("window_size", c.window_size, 64);
  at_most("patch_size", c.patch_size, 64);
  at_most("mlp_ratio", c.mlp_ratio, 64);
  for (int d : c.depths) at_most("depths", d, 64);
  for (int h : c.num_heads) at_most("num_heads", h, 65536);
  at_most("fpn_channels", c.fpn_channels, 65536);
  at_most("rpn_feat_channels", c.rpn_feat_channels, 65536);
  at_most("fc_out_channels", c.fc_out_channels, 65536);
  at_most("mask_conv_channels", c.mask_conv_channels, 65536);
  at_most("mask_num_convs", c.mask_num_convs, 16);
  at_most("bbox_roi_size", c.bbox_roi_size, 64);
  at_most("mask_roi_size", c.mask_roi_size, 64);
  at_most("num_classes", c.num_classes, 100000);
  at_most("num_anchors (scales x ratios)", c.num_anchors(), 1024);
  const double params = DetectorParameterCount(c);
  if (params > kMaxDetectorParameters) {
    Invalid("(whole config)",
            "describes " + std::to_string(params) + " parameters, more than the limit 2^33");
  }
}

namespace {

// A field read with `conv(name, json)` into `member` and written back as JSON.
template <typename T, typename Conv>
Field MakeField(const char* name, T& member, Conv conv) {
  return Field{name, [name, &member, conv](const Json& v) { member = conv(name, v); },
               [&member] { return Json(member); }};
}

std::vector<Field> Fields(DetectorConfig& c,
                          const std::function<void(const char*, const Json&, const char*)>& bad) {
  const auto as_int = [bad](const char* k, const Json& v) {
    if (!v.is_number_integer() ||
        (v.is_number_unsigned() ? v.get<uint64_t>() > uint64_t{std::numeric_limits<int>::max()}
                                : (v.get<int64_t>() > std::numeric_limits<int>::max() ||
                                   v.get<int64_t>() < std::numeric_limits<int>::min()))) {
      bad(k, v, "an integer");
    }
    return v.get<int>();
  };
  const auto as_num = [bad](const char* k, const Json& v) {
    if (!v.is_number() || !std::isfinite(v.get<double>())) bad(k, v, "a finite number");
    return v.get<double>();
  };
  const auto as_bool = [bad](const char* k, const Json& v) {
    if (!v.is_boolean()) bad(k, v, "true or false");
    return v.get<bool>();
  };
  const auto as_str = [bad](const char* k, const Json& v) {
    if (!v.is_string()) bad(k, v, "a string");
    return v.get<std::string>();
  };
  const auto ints = [bad, as_int](const char* k, const Json& v) {
    if (!v.is_array()) bad(k, v, "a list of integers");
    std::vector<int> out;
    for (const Json& x : v) out.push_back(as_int(k, x));
    return out;
  };
  const auto nums = [bad, as_num](const char* k, const Json& v) {
    if (!v.is_array()) bad(k, v, "a list of numbers");
    std::vector<double> out;
    for (const Json& x : v) out.push_back(as_num(k, x));
    return out;
  };
  return {
      MakeField("name", c.name, as_str),
      MakeField("in_chans", c.in_chans, as_int),
      MakeField("patch_size", c.patch_size, as_int),
      MakeField("embed_dim", c.embed_dim, as_int),
      MakeField("depths", c.depths, ints),
      MakeField("num_heads", c.num_heads, ints),
      MakeField("window_size", c.window_size, as_int),
      MakeField("mlp_ratio", c.mlp_ratio, as_int),
      MakeField("qkv_bias", c.qkv_bias, as_bool),
      MakeField("norm_eps", c.norm_eps, as_num),
      MakeField("fpn_channels", c.fpn_channels, as_int),
      MakeField("num_outs", c.num_outs, as_int),
      MakeField("rpn_feat_channels", c.rpn_feat_channels, as_int),
      MakeField("anchor_scales", c.anchor_scales, nums),
      MakeField("anchor_ratios", c.anchor_ratios, nums),
      MakeField("anchor_strides", c.anchor_strides, ints),
      MakeField("rpn_target_stds", c.rpn_target_stds, nums),
      MakeField("num_classes", c.num_classes, as_int),
      MakeField("fc_out_channels", c.fc_out_channels, as_int),
      MakeField("rcnn_target_stds", c.rcnn_target_stds, nums),
      MakeField("mask_num_convs", c.mask_num_convs, as_int),
      MakeField("mask_conv_channels", c.mask_conv_channels, as_int),
      MakeField("bbox_roi_size", c.bbox_roi_size, as_int),
      MakeField("mask_roi_size", c.mask_roi_size, as_int),
      MakeField("sampling_ratio", c.sampling_ratio, as_int),
      MakeField("roi_strides", c.roi_strides, ints),
      MakeField("finest_scale", c.finest_scale, as_num),
      MakeField("rpn_nms_pre", c.rpn_nms_pre, as_int),
      MakeField("rpn_nms_iou", c.rpn_nms_iou, as_num),
      MakeField("rpn_max_per_img", c.rpn_max_per_img, as_int),
      MakeField("rpn_min_bbox_size", c.rpn_min_bbox_size, as_num),
      MakeField("score_thr", c.score_thr, as_num),
      MakeField("rcnn_nms_iou", c.rcnn_nms_iou, as_num),
      MakeField("max_per_img", c.max_per_img, as_int),
      MakeField("mask_thr", c.mask_thr, as_num),
      MakeField("mean", c.mean, nums),
      MakeField("std", c.std, nums),
  };
}

}  // namespace

DetectorConfig DetectorConfigFromMetadata(const std::map<std::string, std::string>& metadata,
                                          const std::string& source) {
  const auto fail = [&](const std::string& why) -> void {
    throw std::runtime_error(source + ": " + why);
  };
  auto arch = metadata.find("arch");
  if (arch == metadata.end())
    fail("metadata has no \"arch\" (a detector needs \"" + std::string(kMaskRcnnSwinArch) + "\")");
  if (arch->second != kMaskRcnnSwinArch) {
    fail("metadata \"arch\" is \"" + arch->second + "\", not a detector (\"" +
         std::string(kMaskRcnnSwinArch) + "\")");
  }
  auto text = metadata.find("config");
  if (text == metadata.end()) fail("metadata has no \"config\"");
  model::CheckJsonDepth(text->second, source + ": metadata \"config\"");
  Json json;
  try {
    json = Json::parse(text->second);
  } catch (const Json::exception& e) {
    fail(std::string("metadata \"config\" is not valid JSON: ") + e.what());
  }
  if (!json.is_object()) fail("metadata \"config\" is not a JSON object: " + json.dump());

  DetectorConfig config;
  const auto bad = [&](const char* key, const Json& v, const char* expected) {
    fail("config: '" + std::string(key) + "' must be " + expected + ", got " + v.dump());
  };
  const std::vector<Field> fields = Fields(config, bad);
  for (const auto& [key, value] : json.items()) {
    bool known = false;
    for (const Field& f : fields) {
      if (key == f.name) {
        f.read(value);
        known = true;
        break;
      }
    }
    if (!known) fail("config: unknown key '" + key + "'");
  }
  if (auto name = metadata.find("name"); name != metadata.end()) config.name = name->second;
  try {
    ValidateDetectorConfig(config);
  } catch (const std::invalid_argument& e) {
    fail(std::string("invalid config: ") + e.what());
  }
  return config;
}

std::map<std::string, std::string> DetectorConfigToMetadata(const DetectorConfig& config) {
  DetectorConfig copy = config;
  Json json = Json::object();
  for (const Field& f : Fields(copy, [](const char*, const Json&, const char*) {})) {
    if (std::string(f.name) != "name") json[f.name] = f.write();
  }
  std::map<std::string, std::string> metadata = {{"arch", kMaskRcnnSwinArch},
                                                 {"config", json.dump()}};
  if (!config.name.empty()) metadata["name"] = config.name;
  return metadata;
}

}  // namespace psaq::detect
