#include "quant/inspect.h"

#include <gtest/gtest.h>

#include <string>

#include "model/registry.h"
#include "model/safetensors.h"
#include "quant/text_table.h"
#include "tests/model/temp_dir.h"

namespace psaq::quant {
namespace {

std::string Golden(const std::string& name) {
  return std::string(PSAQ_TEST_DATA_DIR) + "/golden/" + name + ".weights.safetensors";
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(InspectTest, DescribesAViTWeightsFile) {
  const std::string text = InspectFile(Golden("vit_fmnist"));
  EXPECT_EQ(KindOfFile(Golden("vit_fmnist")), InspectedKind::kWeights);
  EXPECT_TRUE(Contains(text, "float weights")) << text;
  EXPECT_TRUE(Contains(text,
                       "vit: 28x28x1 input, patch 4, embed_dim 32, depth 2, 2 heads, "
                       "mlp_ratio 2, 10 classes"))
      << text;
  // Hand count: patch embed 544, cls 32, pos 1600, 2 blocks x 8544, norm 64, head 330.
  EXPECT_TRUE(Contains(text, "parameters    19,658\n")) << text;
  EXPECT_TRUE(Contains(text, "tensors       32, ")) << text;
  EXPECT_TRUE(Contains(text, "(defaults)")) << text;  // no "preprocess" metadata in the file
  EXPECT_FALSE(Contains(text, "pos_embed")) << text;  // no tensor list by default
}

TEST(InspectTest, ParameterCountMatchesTheLoadedModel) {
  for (const std::string name : {"vit_p4_d48", "swin_p4_w7_d16", "vit_fmnist"}) {
    const model::ModelPtr m = model::LoadModel(Golden(name));
    int64_t params = 0;
    for (const auto& p : m->parameters()) params += p.numel();
    const std::string text = InspectFile(Golden(name));
    EXPECT_TRUE(Contains(text, "parameters    " + FormatCount(params))) << name << "\n" << text;
  }
}

TEST(InspectTest, ListsTensorsOnRequest) {
  InspectOptions options;
  options.list_tensors = true;
  const std::string text = InspectFile(Golden("swin_p4_w7_d16"), options);
  EXPECT_TRUE(Contains(text,
                       "swin: 112x112x3 input, patch 4, embed_dim 16, depths 2-2-2, heads "
                       "1-2-4, window 7"))
      << text;
  // head.fc.weight [10, 64] float32: 2,560 bytes.
  EXPECT_TRUE(Contains(text, "head.fc.weight")) << text;
  EXPECT_TRUE(Contains(text, "[10, 64]")) << text;
  EXPECT_TRUE(Contains(text, "2,560")) << text;
}

TEST(InspectTest, BareCheckpointAndBadFiles) {
  psaq::testing::TempDir dir;
  const std::string bare = dir.Sub("bare.safetensors");
  model::WriteSafetensors(bare, {{"w", at::ones({2, 3})}});
  const std::string text = InspectFile(bare);
  EXPECT_TRUE(Contains(text, "no \"arch\"/\"config\" metadata")) << text;
  EXPECT_TRUE(Contains(text, "parameters    6\n")) << text;
  EXPECT_THROW(InspectFile(dir.Sub("missing.safetensors")), model::SafetensorsError);
  const std::string junk = dir.Write("junk.safetensors", "not a safetensors file at all");
  EXPECT_THROW(InspectFile(junk), model::SafetensorsError);
  model::WriteSafetensors(dir.Sub("badarch.safetensors"), {{"w", at::ones({1})}},
                          {{"arch", "resnet"}, {"config", "{}"}});
  EXPECT_THROW(InspectFile(dir.Sub("badarch.safetensors")), std::runtime_error);
}

}  // namespace
}  // namespace psaq::quant
