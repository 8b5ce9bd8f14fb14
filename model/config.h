// Model configurations: timm's constructor kwargs as plain structs, the named presets, and the
// conversion from/to a weights file's metadata.
//
// Metadata convention (shared with ../shared/golden and every file psaq writes):
//   "arch"          "vit" | "swin"
//   "config"        JSON object of timm's constructor kwargs (img_size, patch_size, in_chans,
//                   num_classes, embed_dim, depth | depths, num_heads, window_size, mlp_ratio,
//                   qkv_bias, ...). Missing keys take timm's class defaults (those of the structs
//                   below). Sizes may be an int or a square pair [n, n].
//                   Other kwargs of timm 1.0.29's VisionTransformer / SwinTransformer:
//                   - architecture kwargs psaq does not implement (qk_norm, init_values,
//                     class_token, global_pool, reg_tokens, pre_norm, fc_norm, head_dim, ...) are
//                     accepted only with timm's default value; any other value is an error
//                     "unsupported timm kwarg 'qk_norm'=true";
//                   - training-only kwargs (drop_rate, *_drop_rate, drop_path_rate, weight_init,
//                     fix_init) are accepted with any valid value and ignored: psaq runs models in
//                     eval mode, where they do nothing;
//                   - a key timm does not know is an error (timm's Swin would silently drop it).
//                   "norm_eps" is a psaq extension (not a timm kwarg), written only when a config's
//                   LayerNorm eps differs from timm's.
//   "preprocess"    optional JSON {"mean": [..], "std": [..], "crop_pct": f, "interpolation": s,
//                   "input_size": n | [C, n, n], "crop_mode": "center"}; mean/std hold in_chans
//                   values or one value for all channels; input_size must match the model.
//                   Missing keys: the preset's values when "name" is a preset of the same arch,
//                   else ImageNet mean/std, crop_pct 0.9, bicubic (for in_chans != 3, the ImageNet
//                   mean/std averaged over channels, repeated in_chans times).
//   "name"          optional label (a preset name or the model's own).
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
  int img_size = 224;      // square input side, pixels
  int patch_size = 16;     // square patch side, pixels
  int in_chans = 3;        // input channels
  int num_classes = 1000;  // 0 = no head (features only)
  int embed_dim = 768;     // C
  int depth = 12;          // number of blocks
  int num_heads = 12;      // H; embed_dim % num_heads == 0
  double mlp_ratio = 4.0;  // MLP hidden = int(embed_dim * mlp_ratio)
  bool qkv_bias = true;    // bias in the qkv Linear
  double norm_eps = 1e-6;  // LayerNorm eps (timm's ViT uses 1e-6)
};

// timm SwinTransformer kwargs. Defaults are timm's (swin_tiny).
struct SwinConfig {
  int img_size = 224;
  int patch_size = 4;
  int in_chans = 3;
  int num_classes = 1000;                  // 0 = no head (pooled features only)
  int embed_dim = 96;                      // C of stage 0; doubles at every later stage
  std::vector<int> depths = {2, 2, 6, 2};  // blocks per stage
  std::vector<int> num_heads = {3, 6, 12, 24};
  int window_size = 7;  // W; clipped to a stage's resolution when larger
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  double norm_eps = 1e-5;  // nn.LayerNorm default
};

// Evaluation preprocessing (timm's data config). mean/std hold in_chans values.
struct PreprocessConfig {
  std::vector<double> mean = {0.485, 0.456, 0.406};  // per channel, in [0, 1] pixel units
  std::vector<double> std = {0.229, 0.224, 0.225};
  double crop_pct = 0.9;                  // resize short side to floor(input_size / crop_pct)
  std::string interpolation = "bicubic";  // "bicubic" | "bilinear" | "nearest"
};

struct ModelConfig {
  std::string name;  // preset name or a label (e.g. the weights file's stem)
  Arch arch = Arch::kViT;
  ViTConfig vit;    // used when arch == kViT
  SwinConfig swin;  // used when arch == kSwin
  PreprocessConfig preprocess;

  int img_size() const;
  int in_chans() const;
  int num_classes() const;
};

// Names of the built-in presets: deit_{tiny,small,base}_patch16_224, vit_{small,base}_patch16_224,
// swin_{tiny,small,base}_patch4_window7_224. Architectures are timm's; preprocessing is timm's
// pretrained cfg (deit_*: ImageNet mean/std, crop 0.9; vit_*: mean/std 0.5, crop 0.9; swin_*:
// ImageNet, 0.9; all bicubic). The DeiT and PSAQ-ViT evaluation code used crop 0.875 for DeiT;
// a weights file selects that with "preprocess": {"crop_pct": 0.875}.
std::vector<std::string> PresetNames();
bool IsPreset(const std::string& name);
// The preset's config. Throws std::invalid_argument listing the presets when unknown.
ModelConfig PresetConfig(const std::string& name);

// Builds a config from a weights file's metadata (see above; other metadata keys are ignored) and
// validates it. `source` names the file in errors. Throws std::runtime_error("<source>: <reason>")
// for a missing/unknown arch, a missing "config", invalid JSON or JSON nesting deeper than
// kMaxJsonDepth (model/file_limits.h, checked before parsing), a wrong-typed or out-of-range value
// (naming the key and the value), an unknown or unsupported kwarg, or a config ValidateConfig
// rejects ("<source>: invalid config: <ValidateConfig's message>").
ModelConfig ConfigFromMetadata(const std::map<std::string, std::string>& metadata,
                               const std::string& source);
// The metadata entries ("arch", "config" with every kwarg psaq implements, "preprocess", and
// "name" when non-empty) that ConfigFromMetadata reads back to an equal config.
std::map<std::string, std::string> ConfigToMetadata(const ModelConfig& config);

// Validates a config; throws std::invalid_argument naming the field and the value when
//   - in_chans, img_size, patch_size, embed_dim, depth, num_heads, window_size, mlp_ratio or
//     norm_eps is not positive, or num_classes < 0 (0 = no head);
//   - img_size % patch_size != 0, or (ViT) embed_dim % num_heads != 0;
//   - (Swin) depths is empty or its size differs from num_heads', a depth or head count is not
//     positive, or for a stage s: img_size/patch_size/2^s is not an integer, is not divisible by
//     min(window_size, that resolution) (timm clips the window to the resolution), or
//     embed_dim*2^s is not divisible by num_heads[s];
//   - preprocess mean/std do not hold in_chans values, a mean is not finite or |mean| > 1e3, a std
//     is outside [1e-3, 1e3] (degenerate normalisation; model/file_limits.h), crop_pct is outside
//     (0, 1], or interpolation is not bicubic/bilinear/nearest;
//   - the model would hold more than kMaxModelElements (2^33) parameters and derived constants,
//     or more than kMaxDerivedElements (2^28) derived constants (Swin's window index and masks),
//     counted from the config (model/model_size.h) before anything is built.
void ValidateConfig(const ModelConfig& config);

}  // namespace psaq::model
