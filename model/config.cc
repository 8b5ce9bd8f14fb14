// Presets, accessors and shape validation; the metadata conversion is in config_metadata.cc.
#include "model/config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/file_limits.h"
#include "model/model_size.h"

namespace psaq::model {
namespace {

// ImageNet statistics (timm IMAGENET_DEFAULT_*) and the "inception" 0.5/0.5 used by the augreg
// ViTs.
const std::vector<double> kImageNetMean = {0.485, 0.456, 0.406};
const std::vector<double> kImageNetStd = {0.229, 0.224, 0.225};
const std::vector<double> kHalf3 = {0.5, 0.5, 0.5};

PreprocessConfig MakePreprocess(std::vector<double> mean, std::vector<double> std,
                                double crop_pct) {
  PreprocessConfig p;
  p.mean = std::move(mean);
  p.std = std::move(std);
  p.crop_pct = crop_pct;
  p.interpolation = "bicubic";
  return p;
}

ModelConfig ViTPreset(const std::string& name, int embed_dim, int num_heads,
                      PreprocessConfig preprocess) {
  ModelConfig c;
  c.name = name;
  c.arch = Arch::kViT;
  c.vit.patch_size = 16;
  c.vit.embed_dim = embed_dim;
  c.vit.depth = 12;
  c.vit.num_heads = num_heads;
  c.preprocess = std::move(preprocess);
  return c;
}

ModelConfig SwinPreset(const std::string& name, int embed_dim, std::vector<int> depths,
                       std::vector<int> num_heads) {
  ModelConfig c;
  c.name = name;
  c.arch = Arch::kSwin;
  c.swin.patch_size = 4;
  c.swin.window_size = 7;
  c.swin.embed_dim = embed_dim;
  c.swin.depths = std::move(depths);
  c.swin.num_heads = std::move(num_heads);
  c.preprocess = MakePreprocess(kImageNetMean, kImageNetStd, 0.9);
  return c;
}

// Architectures as timm's registered model functions (deit.py, vision_transformer.py,
// swin_transformer.py); everything else is the class defaults. Preprocessing: timm's pretrained
// cfgs (DeiT's crop_pct is timm's 0.9; the DeiT and PSAQ-ViT evaluation code used 0.875, which a
// weights file can request through its "preprocess" metadata).
std::vector<ModelConfig> AllPresets() {
  const PreprocessConfig deit = MakePreprocess(kImageNetMean, kImageNetStd, 0.9);
  const PreprocessConfig augreg = MakePreprocess(kHalf3, kHalf3, 0.9);
  return {
      ViTPreset("deit_tiny_patch16_224", 192, 3, deit),
      ViTPreset("deit_small_patch16_224", 384, 6, deit),
      ViTPreset("deit_base_patch16_224", 768, 12, deit),
      ViTPreset("vit_small_patch16_224", 384, 6, augreg),
      ViTPreset("vit_base_patch16_224", 768, 12, augreg),
      SwinPreset("swin_tiny_patch4_window7_224", 96, {2, 2, 6, 2}, {3, 6, 12, 24}),
      SwinPreset("swin_small_patch4_window7_224", 96, {2, 2, 18, 2}, {3, 6, 12, 24}),
      SwinPreset("swin_base_patch4_window7_224", 128, {2, 2, 18, 2}, {4, 8, 16, 32}),
  };
}

template <typename... Parts>
[[noreturn]] void Invalid(const Parts&... parts) {
  std::ostringstream s;
  (s << ... << parts);
  throw std::invalid_argument(s.str());
}

void CheckPositive(const char* field, double value) {
  if (!(value > 0)) Invalid(field, " must be positive, got ", value);
}

void ValidatePreprocess(const PreprocessConfig& p, int in_chans) {
  if (p.mean.size() != static_cast<size_t>(in_chans) ||
      p.std.size() != static_cast<size_t>(in_chans)) {
    Invalid("preprocess mean/std have ", p.mean.size(), "/", p.std.size(), " values; in_chans is ",
            in_chans);
  }
  // Degenerate normalisation is refused: a std of 1e-300 turns every pixel into +-inf.
  for (double m : p.mean) {
    if (!(std::fabs(m) <= kMaxPreprocessMean)) {
      Invalid("preprocess mean must be finite with |mean| <= ", kMaxPreprocessMean, ", got ", m);
    }
  }
  for (double s : p.std) {
    CheckPositive("preprocess std", s);
    if (!(s >= kMinPreprocessStd && s <= kMaxPreprocessStd)) {
      Invalid("preprocess std must be in [", kMinPreprocessStd, ", ", kMaxPreprocessStd, "], got ",
              s);
    }
  }
  if (!(p.crop_pct > 0 && p.crop_pct <= 1)) {
    Invalid("preprocess crop_pct must be in (0, 1], got ", p.crop_pct);
  }
  if (p.interpolation != "bicubic" && p.interpolation != "bilinear" &&
      p.interpolation != "nearest") {
    Invalid("preprocess interpolation must be bicubic, bilinear or nearest, got '", p.interpolation,
            "'");
  }
}

void ValidateViT(const ViTConfig& c) {
  CheckPositive("img_size", c.img_size);
  CheckPositive("patch_size", c.patch_size);
  CheckPositive("embed_dim", c.embed_dim);
  CheckPositive("depth", c.depth);
  CheckPositive("num_heads", c.num_heads);
  CheckPositive("mlp_ratio", c.mlp_ratio);
  CheckPositive("norm_eps", c.norm_eps);
  if (c.img_size % c.patch_size != 0) {
    Invalid("img_size ", c.img_size, " is not divisible by patch_size ", c.patch_size);
  }
  if (c.embed_dim % c.num_heads != 0) {
    Invalid("embed_dim ", c.embed_dim, " is not divisible by num_heads ", c.num_heads);
  }
  if (static_cast<int>(c.embed_dim * c.mlp_ratio) < 1) {
    Invalid("mlp_ratio ", c.mlp_ratio, " gives an empty MLP for embed_dim ", c.embed_dim);
  }
}

void ValidateSwin(const SwinConfig& c) {
  CheckPositive("img_size", c.img_size);
  CheckPositive("patch_size", c.patch_size);
  CheckPositive("embed_dim", c.embed_dim);
  CheckPositive("window_size", c.window_size);
  CheckPositive("mlp_ratio", c.mlp_ratio);
  CheckPositive("norm_eps", c.norm_eps);
  if (c.depths.empty()) Invalid("depths is empty");
  if (c.depths.size() != c.num_heads.size()) {
    Invalid("depths has ", c.depths.size(), " stages but num_heads has ", c.num_heads.size());
  }
  if (c.depths.size() > 16) Invalid("depths has ", c.depths.size(), " stages (at most 16)");
  if (c.img_size % c.patch_size != 0) {
    Invalid("img_size ", c.img_size, " is not divisible by patch_size ", c.patch_size);
  }
  const int grid = c.img_size / c.patch_size;
  for (size_t s = 0; s < c.depths.size(); ++s) {
    if (c.depths[s] < 1) Invalid("depths[", s, "] must be positive, got ", c.depths[s]);
    if (c.num_heads[s] < 1) Invalid("num_heads[", s, "] must be positive, got ", c.num_heads[s]);
    const int scale = 1 << s;
    if (grid % scale != 0) {
      Invalid("stage ", s, " resolution ", grid, "/", scale,
              " (img_size/patch_size/2^stage) is not an integer");
    }
    const int resolution = grid / scale;
    const int window = std::min(c.window_size, resolution);  // timm clips the window
    if (resolution % window != 0) {
      Invalid("stage ", s, " resolution ", resolution, " is not divisible by window_size ", window);
    }
    const int64_t dim = int64_t{c.embed_dim} * scale;
    if (dim % c.num_heads[s] != 0) {
      Invalid("stage ", s, " dim ", dim, " (embed_dim*2^stage) is not divisible by num_heads[", s,
              "] = ", c.num_heads[s]);
    }
    if (static_cast<int64_t>(dim * c.mlp_ratio) < 1) {
      Invalid("mlp_ratio ", c.mlp_ratio, " gives an empty MLP at stage ", s);
    }
  }
}

}  // namespace

std::string ArchName(Arch arch) { return arch == Arch::kViT ? "vit" : "swin"; }

int ModelConfig::img_size() const { return arch == Arch::kViT ? vit.img_size : swin.img_size; }
int ModelConfig::in_chans() const { return arch == Arch::kViT ? vit.in_chans : swin.in_chans; }
int ModelConfig::num_classes() const {
  return arch == Arch::kViT ? vit.num_classes : swin.num_classes;
}

std::vector<std::string> PresetNames() {
  std::vector<std::string> names;
  for (const auto& c : AllPresets()) names.push_back(c.name);
  return names;
}

bool IsPreset(const std::string& name) {
  const auto names = PresetNames();
  return std::find(names.begin(), names.end(), name) != names.end();
}

ModelConfig PresetConfig(const std::string& name) {
  for (auto& c : AllPresets()) {
    if (c.name == name) return c;
  }
  std::ostringstream s;
  s << "unknown model preset '" << name << "'; known presets:";
  for (const auto& n : PresetNames()) s << ' ' << n;
  throw std::invalid_argument(s.str());
}

void ValidateConfig(const ModelConfig& config) {
  if (config.in_chans() < 1) Invalid("in_chans must be positive, got ", config.in_chans());
  if (config.num_classes() < 0) {
    Invalid("num_classes must be >= 0 (0 = no head), got ", config.num_classes());
  }
  if (config.arch == Arch::kViT) {
    ValidateViT(config.vit);
  } else {
    ValidateSwin(config.swin);
  }
  ValidatePreprocess(config.preprocess, config.in_chans());
  // Sane bounds, counted from the config before anything is built (model/file_limits.h).
  const ModelSize size = ModelSizeOf(config);
  if (size.derived > kMaxDerivedElements) {
    Invalid("the window size gives ", size.derived,
            " elements of derived constants (relative position index and shifted-window masks), "
            "more than psaq's limit of ",
            kMaxDerivedElements);
  }
  if (size.parameters > kMaxModelElements || size.parameters + size.derived > kMaxModelElements) {
    Invalid("the model would have ", size.parameters, " parameters and ", size.derived,
            " derived elements, more than psaq's limit of ", kMaxModelElements, " in all");
  }
}

}  // namespace psaq::model
