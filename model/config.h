// Model configurations: timm's constructor kwargs as plain structs, the named presets, and the
// conversion from/to a weights file's metadata.
//
// Metadata convention (shared with ../shared/golden and every file psaq writes):
//   "arch"          "vit" | "swin"
//   "config"        JSON object of timm's constructor kwargs (img_size, patch_size, in_chans,
//                   num_classes, embed_dim, depth | depths, num_heads, window_size, mlp_ratio,
//                   qkv_bias, ...). Missing keys take timm's defaults; a kwarg psaq does not
//                   implement with a non-default value (e.g. qk_norm=true) is an error.
//   "preprocess"    optional JSON {"mean": [..], "std": [..], "crop_pct": f, "interpolation": s,
//                   "input_size": n}; defaults per arch and preset (ImageNet mean/std, 0.9, bicubic).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace psaq::model {

enum class Arch { kViT, kSwin };

// "vit" / "swin".
std::string ArchName(Arch arch);

// timm VisionTransformer kwargs (DeiT is the same class). Defaults are timm's.
struct ViTConfig {
  int img_size = 224;        // square input side, pixels
  int patch_size = 16;       // square patch side, pixels
  int in_chans = 3;          // input channels
  int num_classes = 1000;    // 0 = no head (features only)
  int embed_dim = 768;       // C
  int depth = 12;            // number of blocks
  int num_heads = 12;        // H; embed_dim % num_heads == 0
  double mlp_ratio = 4.0;    // MLP hidden = int(embed_dim * mlp_ratio)
  bool qkv_bias = true;      // bias in the qkv Linear
  double norm_eps = 1e-6;    // LayerNorm eps (timm's ViT uses 1e-6)
};

// timm SwinTransformer kwargs. Defaults are timm's (swin_tiny).
struct SwinConfig {
  int img_size = 224;
  int patch_size = 4;
  int in_chans = 3;
  int num_classes = 1000;
  int embed_dim = 96;                        // C of stage 0; doubles at every later stage
  std::vector<int> depths = {2, 2, 6, 2};    // blocks per stage
  std::vector<int> num_heads = {3, 6, 12, 24};
  int window_size = 7;                       // W; clipped to a stage's resolution when larger
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  double norm_eps = 1e-5;                    // nn.LayerNorm default
};

// Evaluation preprocessing (timm's data config).
struct PreprocessConfig {
  std::vector<double> mean = {0.485, 0.456, 0.406};  // per channel, in [0, 1] pixel units
  std::vector<double> std = {0.229, 0.224, 0.225};
  double crop_pct = 0.9;                 // resize short side to floor(input_size / crop_pct)
  std::string interpolation = "bicubic"; // "bicubic" | "bilinear" | "nearest"
};

struct ModelConfig {
  std::string name;   // preset name or a label (e.g. the weights file's stem)
  Arch arch = Arch::kViT;
  ViTConfig vit;      // used when arch == kViT
  SwinConfig swin;    // used when arch == kSwin
  PreprocessConfig preprocess;

  int img_size() const;
  int in_chans() const;
  int num_classes() const;
};

// Names of the built-in presets: deit_{tiny,small,base}_patch16_224, vit_{small,base}_patch16_224,
// swin_{tiny,small,base}_patch4_window7_224.
std::vector<std::string> PresetNames();
bool IsPreset(const std::string& name);
// The preset's config. Throws std::invalid_argument listing the presets when unknown.
ModelConfig PresetConfig(const std::string& name);

// Builds a config from a weights file's metadata (see above). `source` names the file in errors.
// Throws std::runtime_error("<source>: <reason>") for a missing/unknown arch, invalid JSON, a
// wrong-typed or out-of-range value, or an unsupported kwarg.
ModelConfig ConfigFromMetadata(const std::map<std::string, std::string>& metadata,
                               const std::string& source);
// The metadata entries ("arch", "config", "preprocess") that ConfigFromMetadata reads back.
std::map<std::string, std::string> ConfigToMetadata(const ModelConfig& config);

// Validates shapes (divisibility of img/patch, embed/heads, Swin's window tiling). Throws
// std::invalid_argument naming the field.
void ValidateConfig(const ModelConfig& config);

}  // namespace psaq::model
