// ModelSizeOf against the models CreateModel builds, the config-vs-file check, and the bounds
// ValidateConfig derives from the size (model/file_limits.h).
#include "model/model_size.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/file_limits.h"
#include "model/registry.h"
#include "model/state_dict.h"
#include "model/swin_block.h"
#include "model/window_attention.h"

namespace psaq::model {
namespace {

ModelConfig SmallViT() {
  ModelConfig c;
  c.arch = Arch::kViT;
  c.vit.img_size = 16;
  c.vit.patch_size = 4;
  c.vit.in_chans = 3;
  c.vit.num_classes = 10;
  c.vit.embed_dim = 12;
  c.vit.depth = 3;
  c.vit.num_heads = 3;
  c.vit.mlp_ratio = 2.5;
  return c;
}

ModelConfig SmallSwin() {
  ModelConfig c;
  c.arch = Arch::kSwin;
  c.swin.img_size = 32;
  c.swin.patch_size = 4;  // 8x8 map, then 4x4, then 2x2
  c.swin.in_chans = 2;
  c.swin.num_classes = 7;
  c.swin.embed_dim = 8;
  c.swin.depths = {2, 3, 1};
  c.swin.num_heads = {2, 4, 8};
  c.swin.window_size = 4;  // stage 0: 4 windows, odd blocks shifted; later stages clip the window
  c.swin.mlp_ratio = 1.5;
  c.preprocess.mean = {0.5, 0.5};
  c.preprocess.std = {0.25, 0.25};
  return c;
}

void ExpectSizeOfBuiltModel(const ModelConfig& config) {
  const ModelPtr model = CreateModel(config);
  uint64_t tensors = 0, elements = 0;
  for (const auto& [name, t] : StateDict(*model)) {
    ++tensors;
    elements += static_cast<uint64_t>(t.numel());
  }
  const ModelSize size = ModelSizeOf(config);
  EXPECT_EQ(size.tensors, tensors);
  EXPECT_EQ(size.parameters, elements);
}

TEST(ModelSizeTest, CountsTheStateDictOfBuiltModels) {
  std::vector<ModelConfig> configs;
  for (bool qkv_bias : {true, false}) {
    for (int classes : {10, 0}) {
      ModelConfig vit = SmallViT();
      vit.vit.qkv_bias = qkv_bias;
      vit.vit.num_classes = classes;
      configs.push_back(vit);
      ModelConfig swin = SmallSwin();
      swin.swin.qkv_bias = qkv_bias;
      swin.swin.num_classes = classes;
      configs.push_back(swin);
    }
  }
  ModelConfig wide_window = SmallSwin();
  wide_window.swin.window_size = 16;  // larger than every stage: clipped, never shifted
  configs.push_back(wide_window);
  configs.push_back(PresetConfig("deit_tiny_patch16_224"));
  configs.push_back(PresetConfig("swin_tiny_patch4_window7_224"));
  for (const ModelConfig& config : configs) {
    SCOPED_TRACE(
        ArchName(config.arch) + " embed_dim " +
        std::to_string(config.arch == Arch::kViT ? config.vit.embed_dim : config.swin.embed_dim));
    ExpectSizeOfBuiltModel(config);
  }
}

TEST(ModelSizeTest, CountsSwinsDerivedIndexAndMasks) {
  // Stage 0: 8x8 map, window 4, 2 blocks (block 1 shifted: one mask); stage 1: 4x4 map, window
  // clipped to 4, 3 blocks, no shift; stage 2: 2x2 map, window 2, 1 block.
  const uint64_t expected =
      2 * RelativePositionIndex(4).numel() + ShiftedWindowMask(8, 4, 2).numel() +
      3 * RelativePositionIndex(4).numel() + 1 * RelativePositionIndex(2).numel();
  EXPECT_EQ(ModelSizeOf(SmallSwin()).derived, expected);
  EXPECT_EQ(ModelSizeOf(SmallViT()).derived, 0u);
}

TEST(ModelSizeTest, AbsurdConfigsSaturateInsteadOfOverflowingOrLooping) {
  ModelConfig c = SmallViT();
  c.vit.depth = 2'000'000'000;
  c.vit.embed_dim = 2'000'000'000;
  c.vit.num_heads = 1;
  const auto start = std::chrono::steady_clock::now();
  const ModelSize size = ModelSizeOf(c);
  EXPECT_EQ(size.parameters, UINT64_MAX);
  // Counted per block, not block by block: no loop over two billion blocks.
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.0);
}

TEST(ModelSizeTest, ConfigFarLargerThanTheFileIsRefusedUnbuilt) {
  const ModelConfig config = SmallViT();
  const ModelSize size = ModelSizeOf(config);
  // The file holds the model (or a little less: the strict load names what is missing).
  EXPECT_NO_THROW(CheckConfigFitsFile(config, size.tensors, size.parameters, "w.safetensors"));
  EXPECT_NO_THROW(CheckConfigFitsFile(config, size.tensors - 1, size.parameters / 2, "w"));
  // The probe's files: embed_dim 30000 (10.8 GB asked of a 2.6 MB file), depth 10^6.
  ModelConfig wide = config;
  wide.vit.embed_dim = 30'000;
  wide.vit.num_heads = 1;
  try {
    CheckConfigFitsFile(wide, size.tensors, 650'000, "w.safetensors");
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("w.safetensors: the config describes a model of "),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("far more than the file holds (650,000 elements in " +
                                         std::to_string(size.tensors) + " tensors)"),
              std::string::npos)
        << e.what();
  }
  ModelConfig deep = config;
  deep.vit.depth = 1'000'000;
  EXPECT_THROW(CheckConfigFitsFile(deep, size.tensors, size.parameters, "w"), std::runtime_error);
}

TEST(ModelSizeTest, ValidateConfigRefusesModelsPastTheElementLimits) {
  ModelConfig deep = PresetConfig("deit_base_patch16_224");
  deep.vit.depth = 1'000'000;  // ~7e13 parameters: used to build blocks for minutes
  try {
    ValidateConfig(deep);
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("more than psaq's limit of 8589934592 in all"),
              std::string::npos)
        << e.what();
  }
  // A 512 window on a 1024x1024 map: an 8 MB bias table, but 2^36 index and 2^38 mask elements.
  ModelConfig window = SmallSwin();
  window.swin.img_size = 4096;
  window.swin.window_size = 512;
  window.swin.depths = {2};
  window.swin.num_heads = {2};
  try {
    ValidateConfig(window);
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("elements of derived constants"), std::string::npos)
        << e.what();
  }
  EXPECT_NO_THROW(ValidateConfig(PresetConfig("swin_base_patch4_window7_224")));
}

}  // namespace
}  // namespace psaq::model
