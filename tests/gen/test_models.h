// Small models for the gen tests: the golden fixtures' weights (tests/data/golden) and the quant
// tests' seeded tiny Swin, in eval mode with frozen parameters (as a teacher).
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "model/registry.h"
#include "tests/quant/tiny_models.h"
#include "tests/testing/tensor_near.h"

namespace psaq::gen::testing {

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
inline model::ModelPtr TinySwinTeacher() { return Frozen(quant::testing::TinyModel("swin")); }

}  // namespace psaq::gen::testing
