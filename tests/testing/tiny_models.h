// The tests' small models, shared by every test folder (one builder each, seeded):
//   TinyViTConfig/TinySwinConfig/TinyModel  16x16 ViT and 32x32 Swin with random weights
//   TinyFmnistVit                           28x28x1 ViT fast enough to train for a few steps
//   GoldenTeacher/TinySwinTeacher           frozen (eval, no grad) teachers for generation
// plus QuantConfig shorthands and seeded input batches.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/registry.h"
#include "quant/quant_config.h"
#include "tests/testing/tensor_near.h"

namespace psaq::testing {

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
inline quant::QuantConfig Bits(int weight_bits, int act_bits) {
  quant::QuantConfig config;
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

// A tiny ViT for 28x28x1 images (Fashion-MNIST).

inline model::ModelConfig TinyFmnistVitConfig() {
  model::ModelConfig c;
  c.name = "tiny_vit";
  c.arch = model::Arch::kViT;
  c.vit.img_size = 28;
  c.vit.patch_size = 7;  // 16 tokens
  c.vit.in_chans = 1;
  c.vit.num_classes = 10;
  c.vit.embed_dim = 32;
  c.vit.depth = 1;
  c.vit.num_heads = 2;
  c.vit.mlp_ratio = 2.0;
  c.preprocess.mean = {0.2860};
  c.preprocess.std = {0.3530};
  c.preprocess.crop_pct = 1.0;
  return c;
}

// The model for TinyFmnistVitConfig, initialised from torch seed `seed`.
inline model::ModelPtr TinyFmnistVit(uint64_t seed) {
  at::manual_seed(seed);
  return model::CreateModel(TinyFmnistVitConfig());
}

inline std::string GoldenWeights(const std::string& name) {
  return ::psaq::testing::GoldenDir() + "/" + name + ".weights.safetensors";
}

inline model::ModelPtr Frozen(model::ModelPtr m) {
  m->eval();
  for (auto& p : m->parameters()) p.set_requires_grad(false);
  return m;
}

// vit_fmnist: 28x28, 1 channel, patch 4, C 32, 2 blocks, 10 classes.
inline model::ModelPtr GoldenTeacher(const std::string& name = "vit_fmnist") {
  return Frozen(model::LoadModel(GoldenWeights(name)));
}

// 32x32x3 Swin, window 4, 2 stages of 2 blocks.
inline model::ModelPtr TinySwinTeacher() { return Frozen(TinyModel("swin")); }

}  // namespace psaq::testing
