#include "launch/step_flops.h"

#include <gtest/gtest.h>

namespace psaq::launch {
namespace {

TEST(StepFlopsTest, TinyViTByHand) {
  model::ModelConfig c;
  c.arch = model::Arch::kViT;
  c.vit.img_size = 8;
  c.vit.patch_size = 4;
  c.vit.in_chans = 1;
  c.vit.embed_dim = 4;
  c.vit.depth = 1;
  c.vit.num_heads = 2;
  c.vit.mlp_ratio = 2;
  c.vit.num_classes = 2;
  // N = 5: patch 2*4*1*16*4 = 512; qkv 2*5*4*12 = 480; attention 4*5*5*4 = 400;
  // proj 2*5*4*4 = 160; MLP 4*5*4*8 = 640; head 2*4*2 = 16.
  EXPECT_DOUBLE_EQ(ForwardFlopsPerImage(c), 512 + 480 + 400 + 160 + 640 + 16);
}

TEST(StepFlopsTest, TinySwinByHand) {
  model::ModelConfig c;
  c.arch = model::Arch::kSwin;
  c.swin.img_size = 8;
  c.swin.patch_size = 2;
  c.swin.in_chans = 1;
  c.swin.embed_dim = 2;
  c.swin.depths = {1, 1};
  c.swin.num_heads = {1, 1};
  c.swin.window_size = 2;
  c.swin.mlp_ratio = 1;
  c.swin.num_classes = 3;
  // Stage 0: 16 tokens, d 2, windows of 4: patch 2*16*1*4*2 = 256; qkv 2*16*2*6 = 384;
  // attention 4*16*4*2 = 512; proj 2*16*4 = 128; MLP 4*16*2*2 = 256.
  // Stage 1: merging 2*4*8*4 = 256; 4 tokens, d 4, window 2 (clipped): qkv 2*4*4*12 = 384;
  // attention 4*4*4*4 = 256; proj 2*4*16 = 128; MLP 4*4*4*4 = 256. Head 2*4*3 = 24.
  EXPECT_DOUBLE_EQ(ForwardFlopsPerImage(c),
                   256 + 384 + 512 + 128 + 256 + 256 + 384 + 256 + 128 + 256 + 24);
}

// The papers' multiply-add counts (one MAC = 2 FLOPs): DeiT-B 17.6 G, Swin-T 4.5 G, Swin-S 8.7 G.
TEST(StepFlopsTest, PresetsMatchPublishedCounts) {
  EXPECT_NEAR(ForwardFlopsPerImage(model::PresetConfig("deit_base_patch16_224")) / 2, 17.6e9,
              0.1e9);
  EXPECT_NEAR(ForwardFlopsPerImage(model::PresetConfig("swin_tiny_patch4_window7_224")) / 2, 4.5e9,
              0.1e9);
  EXPECT_NEAR(ForwardFlopsPerImage(model::PresetConfig("swin_small_patch4_window7_224")) / 2,
              8.7e9, 0.15e9);
}

}  // namespace
}  // namespace psaq::launch
