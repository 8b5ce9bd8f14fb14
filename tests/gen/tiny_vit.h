// A tiny ViT for 28x28x1 images (Fashion-MNIST), fast enough to train for a few steps in a test.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "model/registry.h"

namespace psaq::gen::testing {

inline model::ModelConfig TinyVitConfig() {
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

// The model for TinyVitConfig, initialised from torch seed `seed`.
inline model::ModelPtr TinyVit(uint64_t seed) {
  at::manual_seed(seed);
  return model::CreateModel(TinyVitConfig());
}

}  // namespace psaq::gen::testing
