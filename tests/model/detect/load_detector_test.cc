// The detector's config metadata, mmdetection's state-dict names (an expected list derived from
// mmdetection's module structure), strict loading with every problem in one error, and the save /
// load round trip.
#include "model/detect/load_detector.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "model/detect/detector_config.h"
#include "model/registry.h"
#include "model/safetensors.h"
#include "model/state_dict.h"
#include "tests/model/detect/tiny_detector.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/tensor_near.h"

namespace psaq::detect {
namespace {

using Shape = std::vector<int64_t>;

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// mmdetection's MaskRCNN state dict for config c, module by module as mmdet builds it
// (SwinTransformer, FPN, RPNHead, StandardRoIHead with Shared2FCBBoxHead and FCNMaskHead),
// without the derived relative_position_index buffers.
std::vector<std::pair<std::string, Shape>> ExpectedMmdetStateDict(const DetectorConfig& c) {
  std::vector<std::pair<std::string, Shape>> e;
  const auto add = [&](const std::string& n, Shape s) { e.emplace_back(n, std::move(s)); };
  const int64_t C0 = c.embed_dim, P = c.patch_size, F = c.fpn_channels;
  add("backbone.patch_embed.projection.weight", {C0, c.in_chans, P, P});
  add("backbone.patch_embed.projection.bias", {C0});
  add("backbone.patch_embed.norm.weight", {C0});
  add("backbone.patch_embed.norm.bias", {C0});
  const int64_t W = c.window_size;
  for (int i = 0; i < c.num_stages(); ++i) {
    const int64_t C = C0 << i;
    for (int j = 0; j < c.depths[i]; ++j) {
      const std::string b =
          "backbone.stages." + std::to_string(i) + ".blocks." + std::to_string(j) + ".";
      add(b + "norm1.weight", {C});
      add(b + "norm1.bias", {C});
      add(b + "attn.w_msa.relative_position_bias_table",
          {(2 * W - 1) * (2 * W - 1), c.num_heads[i]});
      add(b + "attn.w_msa.qkv.weight", {3 * C, C});
      add(b + "attn.w_msa.qkv.bias", {3 * C});
      add(b + "attn.w_msa.proj.weight", {C, C});
      add(b + "attn.w_msa.proj.bias", {C});
      add(b + "norm2.weight", {C});
      add(b + "norm2.bias", {C});
      add(b + "ffn.layers.0.0.weight", {c.mlp_ratio * C, C});
      add(b + "ffn.layers.0.0.bias", {c.mlp_ratio * C});
      add(b + "ffn.layers.1.weight", {C, c.mlp_ratio * C});
      add(b + "ffn.layers.1.bias", {C});
    }
    if (i + 1 < c.num_stages()) {
      const std::string d = "backbone.stages." + std::to_string(i) + ".downsample.";
      add(d + "norm.weight", {4 * C});
      add(d + "norm.bias", {4 * C});
      add(d + "reduction.weight", {2 * C, 4 * C});
    }
  }
  for (int i = 0; i < c.num_stages(); ++i) {
    add("backbone.norm" + std::to_string(i) + ".weight", {C0 << i});
    add("backbone.norm" + std::to_string(i) + ".bias", {C0 << i});
  }
  for (int i = 0; i < c.num_stages(); ++i) {
    add("neck.lateral_convs." + std::to_string(i) + ".conv.weight", {F, C0 << i, 1, 1});
    add("neck.lateral_convs." + std::to_string(i) + ".conv.bias", {F});
  }
  for (int i = 0; i < c.num_stages(); ++i) {
    add("neck.fpn_convs." + std::to_string(i) + ".conv.weight", {F, F, 3, 3});
    add("neck.fpn_convs." + std::to_string(i) + ".conv.bias", {F});
  }
  const int64_t A = c.num_anchors(), R = c.rpn_feat_channels;
  add("rpn_head.rpn_conv.weight", {R, F, 3, 3});
  add("rpn_head.rpn_conv.bias", {R});
  add("rpn_head.rpn_cls.weight", {A, R, 1, 1});
  add("rpn_head.rpn_cls.bias", {A});
  add("rpn_head.rpn_reg.weight", {4 * A, R, 1, 1});
  add("rpn_head.rpn_reg.bias", {4 * A});
  const int64_t D = c.fc_out_channels, K = c.num_classes, S = c.bbox_roi_size;
  add("roi_head.bbox_head.fc_cls.weight", {K + 1, D});
  add("roi_head.bbox_head.fc_cls.bias", {K + 1});
  add("roi_head.bbox_head.fc_reg.weight", {4 * K, D});
  add("roi_head.bbox_head.fc_reg.bias", {4 * K});
  add("roi_head.bbox_head.shared_fcs.0.weight", {D, F * S * S});
  add("roi_head.bbox_head.shared_fcs.0.bias", {D});
  add("roi_head.bbox_head.shared_fcs.1.weight", {D, D});
  add("roi_head.bbox_head.shared_fcs.1.bias", {D});
  const int64_t M = c.mask_conv_channels;
  for (int k = 0; k < c.mask_num_convs; ++k) {
    add("roi_head.mask_head.convs." + std::to_string(k) + ".conv.weight",
        {M, k == 0 ? F : M, 3, 3});
    add("roi_head.mask_head.convs." + std::to_string(k) + ".conv.bias", {M});
  }
  add("roi_head.mask_head.upsample.weight", {M, M, 2, 2});
  add("roi_head.mask_head.upsample.bias", {M});
  add("roi_head.mask_head.conv_logits.weight", {K, M, 1, 1});
  add("roi_head.mask_head.conv_logits.bias", {K});
  return e;
}

TEST(DetectorNamesTest, StateDictIsMmdetectionsInOrderWithShapes) {
  const DetectorConfig c = testing::TinyDetectorConfig();
  DetectorPtr det = CreateDetector(c);
  std::vector<std::pair<std::string, Shape>> actual;
  for (const auto& [name, t] : model::StateDict(*det)) actual.emplace_back(name, t.sizes().vec());
  const auto expected = ExpectedMmdetStateDict(c);
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(actual[i].first, expected[i].first) << "entry " << i;
    EXPECT_EQ(actual[i].second, expected[i].second) << expected[i].first;
  }
}

TEST(DetectorNamesTest, EveryWeightTapNamesAParameterAndEveryConvOrLinearWeightHasOne) {
  DetectorPtr det = CreateDetector(testing::TinyDetectorConfig());
  std::map<std::string, at::Tensor> params;
  for (const auto& item : det->named_parameters()) params[item.key()] = item.value();
  std::set<std::string> weight_taps;
  for (const auto& t : det->taps().taps()) {
    if (t.kind == model::TapKind::kWeight) {
      EXPECT_TRUE(params.count(t.name)) << t.name;
      weight_taps.insert(t.name);
    }
  }
  for (const auto& [name, p] : params) {
    const bool matrix =
        name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0 && p.dim() >= 2;
    if (matrix) {
      EXPECT_TRUE(weight_taps.count(name)) << name << " has no weight tap";
    }
  }
  EXPECT_EQ(det->taps().taps().front().name, "input");
}

TEST(DetectorConfigTest, MetadataRoundTripAndErrors) {
  DetectorConfig c = testing::TinyDetectorConfig();
  c.sampling_ratio = 2;
  c.anchor_ratios = {0.5, 1.0, 2.0, 4.0};
  const auto md = DetectorConfigToMetadata(c);
  EXPECT_EQ(md.at("arch"), "mask_rcnn_swin");
  const DetectorConfig back = DetectorConfigFromMetadata(md, "f.safetensors");
  EXPECT_EQ(DetectorConfigToMetadata(back), md);
  EXPECT_EQ(back.name, c.name);
  EXPECT_EQ(back.anchor_ratios, c.anchor_ratios);

  const auto with = [&](const std::string& key, const std::string& value) {
    auto m = md;
    m[key] = value;
    return ErrorOf([&] { DetectorConfigFromMetadata(m, "f.safetensors"); });
  };
  EXPECT_EQ(with("arch", "swin"),
            "f.safetensors: metadata \"arch\" is \"swin\", not a detector (\"mask_rcnn_swin\")");
  EXPECT_EQ(with("config", "{\"embed_dims\": 8}"),
            "f.safetensors: config: unknown key 'embed_dims'");
  EXPECT_EQ(with("config", "{\"depths\": 2}"),
            "f.safetensors: config: 'depths' must be a list of integers, got 2");
  EXPECT_EQ(with("config", "{\"score_thr\": \"high\"}"),
            "f.safetensors: config: 'score_thr' must be a finite number, got \"high\"");
  EXPECT_EQ(with("config", "{\"embed_dim\": 18446744073709551615}"),
            "f.safetensors: config: 'embed_dim' must be an integer, got 18446744073709551615");
  EXPECT_EQ(with("config", "{\"fpn_channels\": 2147483648}"),
            "f.safetensors: config: 'fpn_channels' must be an integer, got 2147483648");
  EXPECT_EQ(with("config", "[1]"), "f.safetensors: metadata \"config\" is not a JSON object: [1]");
  EXPECT_NE(with("config", "{").find("is not valid JSON"), std::string::npos);
  EXPECT_EQ(with("config", "{\"num_heads\": [3, 6, 12]}"),
            "f.safetensors: invalid config: DetectorConfig: depths/num_heads must be non-empty "
            "lists of equal length (at most 8), got [2, 2, 6, 2] / [3, 6, 12]");
  EXPECT_EQ(with("config", "{\"anchor_strides\": [4, 8]}"),
            "f.safetensors: invalid config: DetectorConfig: anchor_strides [4, 8] must hold "
            "num_outs (5) values");
  auto no_config = md;
  no_config.erase("config");
  EXPECT_EQ(ErrorOf([&] { DetectorConfigFromMetadata(no_config, "f"); }),
            "f: metadata has no \"config\"");
  // mmdet's defaults: sampling_ratio 0 (adaptive), Swin-T, 80 classes, test_cfg.
  const DetectorConfig d;
  EXPECT_EQ(d.sampling_ratio, 0);
  EXPECT_EQ(d.size_divisor(), 32);
  EXPECT_NO_THROW(ValidateDetectorConfig(d));
}

TEST(LoadDetectorTest, SaveLoadRoundTripGivesTheSameWeights) {
  psaq::testing::TempDir dir;
  torch::manual_seed(5);
  DetectorPtr det = CreateDetector(testing::TinyDetectorConfig());
  SaveDetector(*det, dir / "tiny.safetensors");
  DetectorPtr back = LoadDetector(dir / "tiny.safetensors");
  EXPECT_EQ(back->config().name, "tiny");
  EXPECT_EQ(DetectorConfigToMetadata(back->config()).at("config"),
            DetectorConfigToMetadata(det->config()).at("config"));
  const auto a = model::StateDict(*det);
  const auto b = model::StateDict(*back);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TENSOR_IDENTICAL(b[i].second, a[i].second);
}

TEST(LoadDetectorTest, StrictLoadListsEveryProblemAndIgnoresRelativePositionIndex) {
  psaq::testing::TempDir dir;
  const DetectorConfig c = testing::TinyDetectorConfig();
  DetectorPtr det = CreateDetector(c);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& [name, t] : model::StateDict(*det)) {
    if (name == "backbone.norm0.weight") continue;  // missing
    if (name == "roi_head.bbox_head.fc_cls.weight") {
      tensors.emplace_back(name, at::zeros({5, 32}));  // shape mismatch (K+1 = 4)
      continue;
    }
    tensors.emplace_back(name, t.detach());
  }
  tensors.emplace_back("roi_head.bbox_head.fc_cls2.weight", at::zeros({1}));  // unexpected
  // mmdetection's persistent derived buffer: ignored.
  tensors.emplace_back("backbone.stages.0.blocks.0.attn.w_msa.relative_position_index",
                       at::zeros({49, 49}, at::kLong));
  const std::string path = dir / "bad.safetensors";
  model::WriteSafetensors(path, tensors, DetectorConfigToMetadata(c));
  const std::string error = ErrorOf([&] { LoadDetector(path); });
  EXPECT_EQ(error, path +
                       ": weights do not match the model (3 problems):\n"
                       "  missing keys (1):\n"
                       "    backbone.norm0.weight\n"
                       "  unexpected keys (1):\n"
                       "    roi_head.bbox_head.fc_cls2.weight\n"
                       "  shape mismatches (1):\n"
                       "    roi_head.bbox_head.fc_cls.weight: file [5, 32] vs model [4, 32]")
      << error;
}

TEST(LoadDetectorTest, FileWithoutMetadataNeedsAConfig) {
  psaq::testing::TempDir dir;
  const DetectorConfig c = testing::TinyDetectorConfig();
  DetectorPtr det = CreateDetector(c);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& [name, t] : model::StateDict(*det)) tensors.emplace_back(name, t.detach());
  const std::string path = dir / "mmdet_converted.safetensors";
  model::WriteSafetensors(path, tensors);
  EXPECT_EQ(
      ErrorOf([&] { LoadDetector(path); }),
      path + ": the file has no \"arch\"/\"config\" metadata and no detector config was given");
  DetectorPtr back = LoadDetector(path, c);
  EXPECT_EQ(back->config().name, "mmdet_converted");
  EXPECT_EQ(ErrorOf([&] { LoadDetector(dir / "absent.safetensors"); }),
            dir / "absent.safetensors" + ": not a readable detector weights file");
}

TEST(DetectorConfigTest, ParameterCountIsTheStateDictsAndBoundsHold) {
  std::vector<DetectorConfig> configs = {testing::TinyDetectorConfig()};
  DetectorConfig v = testing::TinyDetectorConfig();
  v.depths = {1, 3, 2};
  v.num_heads = {2, 2, 4};
  v.roi_strides = {4, 8, 16};
  v.anchor_strides = {4, 8, 16, 32};
  v.num_outs = 4;
  v.qkv_bias = false;
  v.mlp_ratio = 2;
  v.mask_num_convs = 2;
  v.anchor_scales = {4, 8};
  v.window_size = 3;
  configs.push_back(v);
  for (const DetectorConfig& c : configs) {
    DetectorPtr det = CreateDetector(c);
    double n = 0;
    for (const auto& [name, t] : model::StateDict(*det)) n += static_cast<double>(t.numel());
    EXPECT_EQ(DetectorParameterCount(c), n);
  }
  DetectorConfig huge = testing::TinyDetectorConfig();
  huge.fc_out_channels = 65536;
  huge.fpn_channels = 65536;
  EXPECT_EQ(ErrorOf([&] {
              ValidateDetectorConfig(huge);
            }).rfind("DetectorConfig: (whole config) describes", 0),
            0u)
      << ErrorOf([&] { ValidateDetectorConfig(huge); });
  DetectorConfig wide = testing::TinyDetectorConfig();
  wide.window_size = 65;
  EXPECT_EQ(ErrorOf([&] { ValidateDetectorConfig(wide); }),
            "DetectorConfig: window_size 65 exceeds the limit 64");
}

TEST(LoadDetectorTest, RefusesAConfigLargerThanTheFileBeforeBuildingIt) {
  psaq::testing::TempDir dir;
  DetectorConfig c = testing::TinyDetectorConfig();
  DetectorPtr det = CreateDetector(c);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& [name, t] : model::StateDict(*det)) tensors.emplace_back(name, t.detach());
  c.fc_out_channels = 4096;  // the file holds the 32-wide box head
  const std::string path = dir / "small.safetensors";
  model::WriteSafetensors(path, tensors, DetectorConfigToMetadata(c));
  const std::string error = ErrorOf([&] { LoadDetector(path); });
  EXPECT_NE(error.find(path + ": the config describes "), std::string::npos) << error;
  EXPECT_NE(error.find(" parameter values but the file holds only "), std::string::npos) << error;
}

TEST(LoadDetectorTest, LoadModelPointsDetectorFilesToLoadDetector) {
  psaq::testing::TempDir dir;
  DetectorPtr det = CreateDetector(testing::TinyDetectorConfig());
  SaveDetector(*det, dir / "det.safetensors");
  EXPECT_EQ(ErrorOf([&] { model::LoadModel(dir / "det.safetensors"); }),
            dir / "det.safetensors" +
                ": a Swin Mask R-CNN detector (arch \"mask_rcnn_swin\"), not a classifier: load it "
                "with psaq::detect::LoadDetector");
}

TEST(ConvertTimmSwinTest, RefusesUnknownKeys) {
  std::map<std::string, at::Tensor> timm = {{"layers.0.blocks.0.gamma", at::zeros({1})}};
  EXPECT_EQ(ErrorOf([&] { ConvertTimmSwinToBackbone(timm); }),
            "ConvertTimmSwinToBackbone: unknown timm Swin key 'layers.0.blocks.0.gamma'");
  timm = {{"layers.0.downsample.reduction.weight", at::zeros({4, 8})}};
  EXPECT_NE(ErrorOf([&] { ConvertTimmSwinToBackbone(timm); }).find("unknown timm Swin key"),
            std::string::npos);
}

}  // namespace
}  // namespace psaq::detect
