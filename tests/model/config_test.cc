#include "model/config.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "model/safetensors.h"
#include "tests/testing/tensor_near.h"

namespace psaq::model {
namespace {

using Metadata = std::map<std::string, std::string>;

void ExpectSameConfig(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.arch, b.arch);
  if (a.arch == Arch::kViT) {
    EXPECT_EQ(a.vit.img_size, b.vit.img_size);
    EXPECT_EQ(a.vit.patch_size, b.vit.patch_size);
    EXPECT_EQ(a.vit.in_chans, b.vit.in_chans);
    EXPECT_EQ(a.vit.num_classes, b.vit.num_classes);
    EXPECT_EQ(a.vit.embed_dim, b.vit.embed_dim);
    EXPECT_EQ(a.vit.depth, b.vit.depth);
    EXPECT_EQ(a.vit.num_heads, b.vit.num_heads);
    EXPECT_EQ(a.vit.mlp_ratio, b.vit.mlp_ratio);
    EXPECT_EQ(a.vit.qkv_bias, b.vit.qkv_bias);
    EXPECT_EQ(a.vit.norm_eps, b.vit.norm_eps);
  } else {
    EXPECT_EQ(a.swin.img_size, b.swin.img_size);
    EXPECT_EQ(a.swin.patch_size, b.swin.patch_size);
    EXPECT_EQ(a.swin.in_chans, b.swin.in_chans);
    EXPECT_EQ(a.swin.num_classes, b.swin.num_classes);
    EXPECT_EQ(a.swin.embed_dim, b.swin.embed_dim);
    EXPECT_EQ(a.swin.depths, b.swin.depths);
    EXPECT_EQ(a.swin.num_heads, b.swin.num_heads);
    EXPECT_EQ(a.swin.window_size, b.swin.window_size);
    EXPECT_EQ(a.swin.mlp_ratio, b.swin.mlp_ratio);
    EXPECT_EQ(a.swin.qkv_bias, b.swin.qkv_bias);
    EXPECT_EQ(a.swin.norm_eps, b.swin.norm_eps);
  }
  EXPECT_EQ(a.preprocess.mean, b.preprocess.mean);
  EXPECT_EQ(a.preprocess.std, b.preprocess.std);
  EXPECT_EQ(a.preprocess.crop_pct, b.preprocess.crop_pct);
  EXPECT_EQ(a.preprocess.interpolation, b.preprocess.interpolation);
}

// Expects ConfigFromMetadata to throw std::runtime_error whose message starts with "src: " and
// contains `reason`.
void ExpectMetadataError(const Metadata& metadata, const std::string& reason) {
  try {
    ConfigFromMetadata(metadata, "src");
    ADD_FAILURE() << "no error, expected: " << reason;
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("src: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(reason), std::string::npos) << "'" << reason << "' not in: " << msg;
  }
}

void ExpectConfigError(const std::string& arch, const std::string& config,
                       const std::string& reason) {
  SCOPED_TRACE(config);
  ExpectMetadataError({{"arch", arch}, {"config", config}}, reason);
}

void ExpectInvalid(const ModelConfig& config, const std::string& reason) {
  try {
    ValidateConfig(config);
    ADD_FAILURE() << "no error, expected: " << reason;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
  }
}

TEST(ConfigTest, EveryPresetIsKnownAndValid) {
  ASSERT_EQ(PresetNames().size(), 8u);
  for (const auto& name : PresetNames()) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(IsPreset(name));
    const ModelConfig c = PresetConfig(name);
    EXPECT_EQ(c.name, name);
    EXPECT_NO_THROW(ValidateConfig(c));
    EXPECT_EQ(c.img_size(), 224);
    EXPECT_EQ(c.in_chans(), 3);
    EXPECT_EQ(c.num_classes(), 1000);
    EXPECT_EQ(c.preprocess.interpolation, "bicubic");
  }
  EXPECT_FALSE(IsPreset("deit_huge"));
}

TEST(ConfigTest, PresetArchitecturesAreTimms) {
  struct ViTRow {
    const char* name;
    int embed, depth, heads;
  };
  for (const ViTRow& r :
       {ViTRow{"deit_tiny_patch16_224", 192, 12, 3}, ViTRow{"deit_small_patch16_224", 384, 12, 6},
        ViTRow{"deit_base_patch16_224", 768, 12, 12}, ViTRow{"vit_small_patch16_224", 384, 12, 6},
        ViTRow{"vit_base_patch16_224", 768, 12, 12}}) {
    SCOPED_TRACE(r.name);
    const ModelConfig c = PresetConfig(r.name);
    ASSERT_EQ(c.arch, Arch::kViT);
    EXPECT_EQ(c.vit.patch_size, 16);
    EXPECT_EQ(c.vit.embed_dim, r.embed);
    EXPECT_EQ(c.vit.depth, r.depth);
    EXPECT_EQ(c.vit.num_heads, r.heads);
    EXPECT_EQ(c.vit.mlp_ratio, 4.0);
    EXPECT_TRUE(c.vit.qkv_bias);
    EXPECT_EQ(c.vit.norm_eps, 1e-6);
  }
  struct SwinRow {
    const char* name;
    int embed;
    std::vector<int> depths, heads;
  };
  for (const SwinRow& r :
       {SwinRow{"swin_tiny_patch4_window7_224", 96, {2, 2, 6, 2}, {3, 6, 12, 24}},
        SwinRow{"swin_small_patch4_window7_224", 96, {2, 2, 18, 2}, {3, 6, 12, 24}},
        SwinRow{"swin_base_patch4_window7_224", 128, {2, 2, 18, 2}, {4, 8, 16, 32}}}) {
    SCOPED_TRACE(r.name);
    const ModelConfig c = PresetConfig(r.name);
    ASSERT_EQ(c.arch, Arch::kSwin);
    EXPECT_EQ(c.swin.patch_size, 4);
    EXPECT_EQ(c.swin.window_size, 7);
    EXPECT_EQ(c.swin.embed_dim, r.embed);
    EXPECT_EQ(c.swin.depths, r.depths);
    EXPECT_EQ(c.swin.num_heads, r.heads);
    EXPECT_EQ(c.swin.norm_eps, 1e-5);
  }
}

TEST(ConfigTest, PresetPreprocessing) {
  const std::vector<double> imagenet_mean = {0.485, 0.456, 0.406};
  const std::vector<double> imagenet_std = {0.229, 0.224, 0.225};
  for (const char* name :
       {"deit_tiny_patch16_224", "deit_small_patch16_224", "deit_base_patch16_224"}) {
    const PreprocessConfig p = PresetConfig(name).preprocess;
    EXPECT_EQ(p.mean, imagenet_mean) << name;
    EXPECT_EQ(p.std, imagenet_std) << name;
    EXPECT_EQ(p.crop_pct, 0.9) << name;
  }
  for (const char* name : {"vit_small_patch16_224", "vit_base_patch16_224"}) {
    const PreprocessConfig p = PresetConfig(name).preprocess;
    EXPECT_EQ(p.mean, std::vector<double>(3, 0.5)) << name;
    EXPECT_EQ(p.std, std::vector<double>(3, 0.5)) << name;
    EXPECT_EQ(p.crop_pct, 0.9) << name;
  }
  for (const char* name : {"swin_tiny_patch4_window7_224", "swin_small_patch4_window7_224",
                           "swin_base_patch4_window7_224"}) {
    const PreprocessConfig p = PresetConfig(name).preprocess;
    EXPECT_EQ(p.mean, imagenet_mean) << name;
    EXPECT_EQ(p.std, imagenet_std) << name;
    EXPECT_EQ(p.crop_pct, 0.9) << name;
  }
}

TEST(ConfigTest, UnknownPresetListsTheKnownOnes) {
  try {
    PresetConfig("deit_huge");
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'deit_huge'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("swin_base_patch4_window7_224"), std::string::npos) << msg;
  }
}

TEST(ConfigTest, GoldenWeightsMetadataParsesToTheManifestNumbers) {
  const auto load = [](const std::string& stem) {
    const std::string path = psaq::testing::GoldenDir() + "/" + stem + ".weights.safetensors";
    return ConfigFromMetadata(ReadSafetensorsHeader(path).metadata, path);
  };
  const ModelConfig vit = load("vit_p4_d48");
  ASSERT_EQ(vit.arch, Arch::kViT);
  EXPECT_EQ(vit.vit.img_size, 32);
  EXPECT_EQ(vit.vit.patch_size, 4);
  EXPECT_EQ(vit.vit.in_chans, 3);
  EXPECT_EQ(vit.vit.num_classes, 10);
  EXPECT_EQ(vit.vit.embed_dim, 48);
  EXPECT_EQ(vit.vit.depth, 3);
  EXPECT_EQ(vit.vit.num_heads, 3);
  EXPECT_EQ(vit.vit.mlp_ratio, 4.0);
  EXPECT_TRUE(vit.vit.qkv_bias);
  EXPECT_EQ(vit.vit.norm_eps, 1e-6);
  EXPECT_EQ(vit.preprocess.mean, std::vector<double>({0.485, 0.456, 0.406}));

  const ModelConfig swin = load("swin_p4_w7_d16");
  ASSERT_EQ(swin.arch, Arch::kSwin);
  EXPECT_EQ(swin.swin.img_size, 112);
  EXPECT_EQ(swin.swin.patch_size, 4);
  EXPECT_EQ(swin.swin.in_chans, 3);
  EXPECT_EQ(swin.swin.num_classes, 10);
  EXPECT_EQ(swin.swin.embed_dim, 16);
  EXPECT_EQ(swin.swin.depths, std::vector<int>({2, 2, 2}));
  EXPECT_EQ(swin.swin.num_heads, std::vector<int>({1, 2, 4}));
  EXPECT_EQ(swin.swin.window_size, 7);
  EXPECT_EQ(swin.swin.mlp_ratio, 4.0);
  EXPECT_TRUE(swin.swin.qkv_bias);
  EXPECT_EQ(swin.swin.norm_eps, 1e-5);

  const ModelConfig fmnist = load("vit_fmnist");
  ASSERT_EQ(fmnist.arch, Arch::kViT);
  EXPECT_EQ(fmnist.vit.img_size, 28);
  EXPECT_EQ(fmnist.vit.in_chans, 1);
  EXPECT_EQ(fmnist.vit.embed_dim, 32);
  EXPECT_EQ(fmnist.vit.depth, 2);
  EXPECT_EQ(fmnist.vit.num_heads, 2);
  EXPECT_EQ(fmnist.vit.mlp_ratio, 2.0);
  // No "preprocess": the ImageNet statistics averaged over the 3 channels.
  ASSERT_EQ(fmnist.preprocess.mean.size(), 1u);
  EXPECT_DOUBLE_EQ(fmnist.preprocess.mean[0], (0.485 + 0.456 + 0.406) / 3);
  EXPECT_DOUBLE_EQ(fmnist.preprocess.std[0], (0.229 + 0.224 + 0.225) / 3);
}

TEST(ConfigTest, MissingKwargsTakeTimmClassDefaults) {
  ExpectSameConfig(ConfigFromMetadata({{"arch", "vit"}, {"config", "{}"}}, "src"), ModelConfig());
  ModelConfig swin;
  swin.arch = Arch::kSwin;
  ExpectSameConfig(ConfigFromMetadata({{"arch", "swin"}, {"config", "{}"}}, "src"), swin);
}

TEST(ConfigTest, MetadataRoundTripsEveryPresetAndCustomConfigs) {
  std::vector<ModelConfig> configs;
  for (const auto& name : PresetNames()) configs.push_back(PresetConfig(name));
  ModelConfig vit;
  vit.name = "tiny_gray";
  vit.vit = {28, 4, 1, 0, 32, 2, 2, 2.5, false, 1e-5};
  vit.preprocess.mean = {0.286};
  vit.preprocess.std = {0.353};
  vit.preprocess.crop_pct = 1.0;
  vit.preprocess.interpolation = "bilinear";
  configs.push_back(vit);
  ModelConfig swin;
  swin.arch = Arch::kSwin;
  swin.swin = {112, 4, 3, 10, 16, {2, 2, 2}, {1, 2, 4}, 7, 4.0, true, 1e-6};
  configs.push_back(swin);
  for (const ModelConfig& c : configs) {
    SCOPED_TRACE(c.name);
    const Metadata metadata = ConfigToMetadata(c);
    EXPECT_EQ(metadata.at("arch"), ArchName(c.arch));
    EXPECT_EQ(metadata.count("name"), c.name.empty() ? 0u : 1u);
    ExpectSameConfig(ConfigFromMetadata(metadata, "src"), c);
  }
  // The default eps is not written (it is not a timm kwarg); a different one is.
  EXPECT_EQ(ConfigToMetadata(configs[0]).at("config").find("norm_eps"), std::string::npos);
  EXPECT_NE(ConfigToMetadata(vit).at("config").find("\"norm_eps\""), std::string::npos);
}

TEST(ConfigTest, PresetNameSelectsThePresetsPreprocessing) {
  // vit_* presets use mean/std 0.5, unlike the ImageNet default a nameless config gets.
  const ModelConfig c = ConfigFromMetadata({{"arch", "vit"},
                                            {"name", "vit_small_patch16_224"},
                                            {"config", R"({"embed_dim": 384, "num_heads": 6})"}},
                                           "src");
  EXPECT_EQ(c.name, "vit_small_patch16_224");
  EXPECT_EQ(c.preprocess.mean, std::vector<double>({0.5, 0.5, 0.5}));
}

TEST(ConfigTest, DefaultValuedAndTrainingOnlyKwargsAreAccepted) {
  const ModelConfig vit = ConfigFromMetadata(
      {{"arch", "vit"},
       {"config", R"({"img_size": [32, 32], "patch_size": 4, "embed_dim": 48, "num_heads": 3,
                      "global_pool": "token", "class_token": true, "qk_norm": false,
                      "init_values": null, "reg_tokens": 0, "no_embed_class": false,
                      "pre_norm": false, "fc_norm": null, "pos_embed": "learn", "norm_layer": null,
                      "drop_rate": 0.1, "drop_path_rate": 0.2, "attn_drop_rate": 0.0,
                      "weight_init": "jax", "fix_init": true})"}},
      "src");
  EXPECT_EQ(vit.vit.img_size, 32);
  const ModelConfig swin = ConfigFromMetadata(
      {{"arch", "swin"},
       {"config", R"({"global_pool": "avg", "head_dim": null, "always_partition": false,
                      "strict_img_size": true, "drop_path_rate": 0.3, "window_size": [7, 7]})"}},
      "src");
  EXPECT_EQ(swin.swin.window_size, 7);
}

TEST(ConfigTest, NonDefaultUnsupportedKwargIsAnError) {
  ExpectConfigError("vit", R"({"qk_norm": true})",
                    "src: config: unsupported timm kwarg 'qk_norm'=true (psaq implements only "
                    "timm's default, false)");
  ExpectConfigError("vit", R"({"global_pool": "avg"})",
                    "unsupported timm kwarg 'global_pool'=\"avg\"");
  ExpectConfigError("vit", R"({"init_values": 1e-5})", "unsupported timm kwarg 'init_values'");
  ExpectConfigError("vit", R"({"reg_tokens": 4})", "unsupported timm kwarg 'reg_tokens'=4");
  ExpectConfigError("swin", R"({"global_pool": ""})", "unsupported timm kwarg 'global_pool'=\"\"");
  ExpectConfigError("swin", R"({"norm_layer": "layernorm"})",
                    "unsupported timm kwarg 'norm_layer'=\"layernorm\" (psaq implements only "
                    "timm's default, nn.LayerNorm)");
}

TEST(ConfigTest, UnknownKwargIsAnError) {
  ExpectConfigError("vit", R"({"depths": [2, 2]})",
                    "config: unknown timm VisionTransformer kwarg 'depths'");
  ExpectConfigError("swin", R"({"depth": 12})",
                    "config: unknown timm SwinTransformer kwarg 'depth'");
}

TEST(ConfigTest, WrongTypedKwargNamesKeyAndValue) {
  ExpectConfigError("vit", R"({"embed_dim": "big"})",
                    "config: 'embed_dim' must be an integer, got \"big\"");
  ExpectConfigError("vit", R"({"embed_dim": 48.0})", "'embed_dim' must be an integer, got 48.0");
  ExpectConfigError("vit", R"({"depth": 10000000000})", "'depth' must be an integer in int range");
  ExpectConfigError("vit", R"({"qkv_bias": 1})", "'qkv_bias' must be true or false, got 1");
  ExpectConfigError("vit", R"({"mlp_ratio": "4"})",
                    "'mlp_ratio' must be a finite number, got \"4\"");
  ExpectConfigError("vit", R"({"img_size": [224, 192]})", "non-square 'img_size' [224,192]");
  ExpectConfigError("vit", R"({"drop_rate": 1.5})",
                    "'drop_rate' must be a rate in [0, 1), got 1.5");
  ExpectConfigError("vit", R"({"weight_init": 3})", "'weight_init' must be a string, got 3");
  ExpectConfigError("swin", R"({"depths": 4})", "'depths' must be a list of integers, got 4");
  ExpectConfigError("swin", R"({"num_heads": [3, "6"]})",
                    "'num_heads' must be an integer, got \"6\"");
}

TEST(ConfigTest, OutOfRangeValueIsAnInvalidConfig) {
  ExpectConfigError("vit", R"({"embed_dim": -48})",
                    "src: invalid config: embed_dim must be positive, got -48");
  ExpectConfigError("vit", R"({"num_classes": -1})", "invalid config: num_classes must be >= 0");
  ExpectConfigError("vit", R"({"in_chans": 0})",
                    "invalid config: in_chans must be positive, got 0");
  ExpectConfigError("swin", R"({"mlp_ratio": 0})",
                    "invalid config: mlp_ratio must be positive, got 0");
  ExpectConfigError("vit", R"({"embed_dim": 100})",
                    "invalid config: embed_dim 100 is not divisible by num_heads 12");
}

TEST(ConfigTest, MetadataStructureErrors) {
  ExpectMetadataError({{"config", "{}"}}, "src: metadata has no \"arch\"");
  ExpectMetadataError({{"arch", "resnet"}, {"config", "{}"}},
                      "metadata \"arch\" is 'resnet', expected \"vit\" or \"swin\"");
  ExpectMetadataError({{"arch", "vit"}}, "src: metadata has no \"config\"");
  ExpectMetadataError({{"arch", "vit"}, {"config", "{\"depth\": "}},
                      "metadata \"config\" is not valid JSON");
  ExpectMetadataError({{"arch", "vit"}, {"config", "[1]"}},
                      "metadata \"config\" is not a JSON object: [1]");
  ExpectMetadataError({{"arch", "vit"}, {"config", "{}"}, {"preprocess", "7"}},
                      "metadata \"preprocess\" is not a JSON object: 7");
}

TEST(ConfigTest, DeeplyNestedMetadataIsRefusedBeforeParsing) {
  // The error message for a wrong-typed value dumps it, recursively: 100,000 levels overflowed
  // the stack (SIGSEGV). psaq's limit is 64 levels (model/file_limits.h).
  const int deep = 100'000;
  const std::string nested = std::string(deep, '[') + std::string(deep, ']');
  ExpectMetadataError({{"arch", "vit"}, {"config", R"({"embed_dim": )" + nested + "}"}},
                      "src: metadata \"config\": JSON nests deeper than 64 levels");
  ExpectMetadataError(
      {{"arch", "vit"}, {"config", "{}"}, {"preprocess", R"({"mean": )" + nested + "}"}},
      "src: metadata \"preprocess\": JSON nests deeper than 64 levels");
  // Within the limit, the value is refused for what it is.
  ExpectMetadataError({{"arch", "vit"}, {"config", R"({"embed_dim": [[[]]]})"}},
                      "'embed_dim' must be an integer, got [[[]]]");
}

TEST(ConfigTest, PreprocessMetadataIsReadAndChecked) {
  const ModelConfig c = ConfigFromMetadata(
      {{"arch", "vit"},
       {"config", "{}"},
       {"preprocess", R"({"mean": 0.5, "std": [0.25], "crop_pct": 0.95, "interpolation": "bilinear",
                          "input_size": [3, 224, 224], "crop_mode": "center"})"}},
      "src");
  EXPECT_EQ(c.preprocess.mean, std::vector<double>(3, 0.5));
  EXPECT_EQ(c.preprocess.std, std::vector<double>(3, 0.25));
  EXPECT_EQ(c.preprocess.crop_pct, 0.95);
  EXPECT_EQ(c.preprocess.interpolation, "bilinear");

  const auto expect_error = [](const std::string& preprocess, const std::string& reason) {
    SCOPED_TRACE(preprocess);
    ExpectMetadataError({{"arch", "vit"}, {"config", "{}"}, {"preprocess", preprocess}}, reason);
  };
  expect_error(R"({"mean": [0.1, 0.2]})", "preprocess: 'mean' must be 1 or in_chans (3) values");
  expect_error(R"({"std": "x"})", "preprocess: 'std' must be a number or a list of numbers");
  expect_error(R"({"input_size": 256})",
               "preprocess: input_size 256 does not match the model's img_size 224");
  expect_error(R"({"input_size": [1, 224, 224]})", "input_size [1,224,224] does not match");
  expect_error(R"({"crop_mode": "squash"})", "preprocess: unsupported crop_mode \"squash\"");
  expect_error(R"({"resize": 256})", "preprocess: unknown key 'resize'");
  expect_error(R"({"interpolation": "lanczos"})",
               "invalid config: preprocess interpolation must be");
  expect_error(R"({"crop_pct": 1.5})",
               "invalid config: preprocess crop_pct must be in (0, 1], got 1.5");
  expect_error(R"({"std": [0.2, 0, 0.2]})",
               "invalid config: preprocess std must be positive, got 0");
}

TEST(ConfigTest, ZeroClassesMeansNoHeadAndIsValid) {
  ModelConfig c = PresetConfig("deit_tiny_patch16_224");
  c.vit.num_classes = 0;
  EXPECT_NO_THROW(ValidateConfig(c));
  EXPECT_EQ(c.num_classes(), 0);
}

TEST(ConfigTest, ValidateConfigRejectsBadViTShapes) {
  ModelConfig c = PresetConfig("deit_tiny_patch16_224");
  c.vit.img_size = 225;
  ExpectInvalid(c, "img_size 225 is not divisible by patch_size 16");
  c = PresetConfig("deit_tiny_patch16_224");
  c.vit.num_heads = 5;
  ExpectInvalid(c, "embed_dim 192 is not divisible by num_heads 5");
  c = PresetConfig("deit_tiny_patch16_224");
  c.vit.mlp_ratio = -1;
  ExpectInvalid(c, "mlp_ratio must be positive, got -1");
  c = PresetConfig("deit_tiny_patch16_224");
  c.vit.in_chans = 0;
  ExpectInvalid(c, "in_chans must be positive, got 0");
  c = PresetConfig("deit_tiny_patch16_224");
  c.vit.num_classes = -2;
  ExpectInvalid(c, "num_classes must be >= 0 (0 = no head), got -2");
  c = PresetConfig("deit_tiny_patch16_224");
  c.vit.in_chans = 1;  // the preset's mean/std have 3 values
  ExpectInvalid(c, "preprocess mean/std have 3/3 values; in_chans is 1");
}

TEST(ConfigTest, ValidateConfigRejectsBadSwinShapes) {
  ModelConfig c = PresetConfig("swin_tiny_patch4_window7_224");
  c.swin.num_heads = {3, 6, 12};
  ExpectInvalid(c, "depths has 4 stages but num_heads has 3");
  c = PresetConfig("swin_tiny_patch4_window7_224");
  c.swin.depths.clear();
  c.swin.num_heads.clear();
  ExpectInvalid(c, "depths is empty");
  c = PresetConfig("swin_tiny_patch4_window7_224");
  c.swin.img_size = 28;  // 7 -> 3.5
  ExpectInvalid(c, "stage 1 resolution 7/2 (img_size/patch_size/2^stage) is not an integer");
  c = PresetConfig("swin_tiny_patch4_window7_224");
  c.swin.window_size = 6;  // 56 % 6 != 0
  ExpectInvalid(c, "stage 0 resolution 56 is not divisible by window_size 6");
  c = PresetConfig("swin_tiny_patch4_window7_224");
  c.swin.num_heads = {3, 5, 12, 24};  // 192 % 5
  ExpectInvalid(c, "stage 1 dim 192 (embed_dim*2^stage) is not divisible by num_heads[1] = 5");
  c = PresetConfig("swin_tiny_patch4_window7_224");
  c.swin.depths = {2, 0, 6, 2};
  ExpectInvalid(c, "depths[1] must be positive, got 0");
}

TEST(ConfigTest, SwinWindowIsClippedToSmallerStageResolutions) {
  // Resolutions 8, 4, 2, 1 with window 8: only the clipped windows 4, 2, 1 tile the later stages.
  ModelConfig c;
  c.arch = Arch::kSwin;
  c.swin.img_size = 32;
  c.swin.window_size = 8;
  c.swin.depths = {1, 1, 1, 1};
  EXPECT_NO_THROW(ValidateConfig(c));
  c.swin.window_size = 3;  // 8 % 3 != 0 and 3 < 8, so no clipping at stage 0
  ExpectInvalid(c, "stage 0 resolution 8 is not divisible by window_size 3");
  c.swin.window_size = 5;  // stage 1: 4 <= 5 clips to 4, but stage 0 (8 % 5) fails first
  ExpectInvalid(c, "stage 0 resolution 8 is not divisible by window_size 5");
}

}  // namespace
}  // namespace psaq::model
