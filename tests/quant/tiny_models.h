// Small seeded ViT and Swin models and inputs for the quant tests (seconds on 2 cores).
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "model/config.h"
#include "model/registry.h"
#include "quant/quant_config.h"

namespace psaq::quant::testing {

// 16x16 images, patch 4 -> 16 tokens + class token, C = 32, 2 blocks of 2 heads, 10 classes.
inline model::ModelConfig TinyViTConfig() {
  model::ModelConfig config;
  config.name = "quant_tiny_vit";
  config.arch = model::Arch::kViT;
  config.vit.img_size = 16;
  config.vit.patch_size = 4;
  config.vit.in_chans = 3;
  config.vit.num_classes = 10;
  config.vit.embed_dim = 32;
  config.vit.depth = 2;
  config.vit.num_heads = 2;
  config.vit.mlp_ratio = 2.0;
  return config;
}

// 32x32 images, patch 4 -> 8x8 map, window 4 (stage 0: 4 windows, block 1 shifted), then 4x4
// after merging; C = 16 then 32, 10 classes.
inline model::ModelConfig TinySwinConfig() {
  model::ModelConfig config;
  config.name = "quant_tiny_swin";
  config.arch = model::Arch::kSwin;
  config.swin.img_size = 32;
  config.swin.patch_size = 4;
  config.swin.in_chans = 3;
  config.swin.num_classes = 10;
  config.swin.embed_dim = 16;
  config.swin.depths = {2, 2};
  config.swin.num_heads = {2, 4};
  config.swin.window_size = 4;
  config.swin.mlp_ratio = 2.0;
  return config;
}

inline model::ModelConfig TinyConfig(const std::string& arch) {
  return arch == "vit" ? TinyViTConfig() : TinySwinConfig();
}

// The same weights every call (the seed is fixed before construction).
// timm's init draws the ViT class token from N(0, 1e-6): any per-tensor quantizer maps it to 0
// and the class-token path carries nothing. Trained models have a class token on the scale of
// the patch tokens, so the ViT gets a N(0, 1) class token here.
inline model::ModelPtr TinyModel(const std::string& arch, uint64_t seed = 17) {
  at::manual_seed(seed);
  model::ModelPtr m = model::CreateModel(TinyConfig(arch));
  if (arch == "vit") {
    at::NoGradGuard no_grad;
    m->named_parameters()["cls_token"].normal_();
  }
  return m;
}

// A config with these bit widths and every other field at its default.
inline QuantConfig Bits(int weight_bits, int act_bits) {
  QuantConfig config;
  config.weight_bits = weight_bits;
  config.act_bits = act_bits;
  return config;
}

// `count` batches of `batch` normalised images, deterministic in `seed`.
inline std::vector<at::Tensor> Batches(const model::ModelConfig& config, int count, int64_t batch,
                                       uint64_t seed) {
  at::manual_seed(seed);
  std::vector<at::Tensor> out;
  for (int i = 0; i < count; ++i) {
    out.push_back(at::randn({batch, config.in_chans(), config.img_size(), config.img_size()}));
  }
  return out;
}

}  // namespace psaq::quant::testing
