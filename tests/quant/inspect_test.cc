#include "quant/inspect.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "model/registry.h"
#include "model/safetensors.h"
#include "quant/calibration.h"
#include "quant/export.h"
#include "dist/base/text_table.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/tiny_models.h"

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
    EXPECT_TRUE(Contains(text, "parameters    " + base::FormatCount(params))) << name << "\n" << text;
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

// A W4A8 export of the tiny ViT (head kept at 8 bits), calibrated on noise.
std::string WriteExport(const psaq::testing::TempDir& dir,
                        InputRange input_range = InputRange::kCalibrated) {
  QuantConfig config = testing::Bits(4, 8);
  config.bits_overrides["head.weight"] = 8;
  config.input_range = input_range;
  QuantizedModel q(testing::TinyModel("vit"), config);
  Calibrate(q, testing::Batches(testing::TinyConfig("vit"), 1, 8, 5), nullptr);
  ExportOptions options;
  options.method = "noise";
  options.num_samples = 8;
  options.tool = "inspect_test";
  const std::string path = dir.Sub("tiny_w4a8.safetensors");
  ExportQuantizedModel(q, path, options);
  return path;
}

TEST(InspectExportTest, DescribesMetadataPointsAndScales) {
  psaq::testing::TempDir dir;
  const std::string path = WriteExport(dir);
  EXPECT_EQ(KindOfFile(path), InspectedKind::kQuantizedExport);
  const std::string text = InspectFile(path);
  EXPECT_TRUE(Contains(text, "quantized export (psaq_quantized version 1, int8 weight codes)"))
      << text;
  EXPECT_TRUE(Contains(text, "bits          W4A8 (weights per_channel, activation ranges minmax)"))
      << text;
  EXPECT_TRUE(Contains(text, "calibration   noise, 8 samples")) << text;
  EXPECT_TRUE(Contains(text, "written by    inspect_test (psaq ")) << text;
  EXPECT_TRUE(Contains(text, "vit: 16x16x3 input, patch 4, embed_dim 32, depth 2")) << text;

  // The counts, bits and scale summary agree with the manifest, read independently here.
  std::ifstream in(ManifestPath(path));
  const nlohmann::json manifest = nlohmann::json::parse(in);
  int64_t weights = 0, weights4 = 0, activations = 0;
  double scale_min = 1e30, scale_max = 0;
  for (const auto& p : manifest["points"]) {
    if (p["kind"] == "weight") {
      ++weights;
      weights4 += p["bits"] == 4;
      scale_min = std::min(scale_min, p["scale_min"].get<double>());
      scale_max = std::max(scale_max, p["scale_max"].get<double>());
    } else {
      ++activations;
    }
  }
  ASSERT_GT(weights4, 0);
  EXPECT_TRUE(Contains(text, "quant points  " + std::to_string(weights) +
                                 " weight points (4 bits: " + std::to_string(weights4) + ", 8 bits: 1), " +
                                 std::to_string(activations) +
                                 " activation points (8 bits: " + std::to_string(activations) + ")"))
      << text;
  char expected[128];
  std::snprintf(expected, sizeof(expected), "min %.4g, median of channel means", scale_min);
  EXPECT_TRUE(Contains(text, expected)) << text;
  std::snprintf(expected, sizeof(expected), ", max %.4g\n", scale_max);
  EXPECT_TRUE(Contains(text, expected)) << text;
  // The per-point tables: the 8-bit head and an activation point.
  EXPECT_TRUE(Contains(text, "head.weight")) << text;
  EXPECT_TRUE(Contains(text, "zero point")) << text;
  // Parameters: the float model's, not the scales and activation ranges.
  const model::ModelPtr m = testing::TinyModel("vit");
  int64_t params = 0;
  for (const auto& p : m->parameters()) params += p.numel();
  EXPECT_TRUE(Contains(text, "parameters    " + base::FormatCount(params) + "\n")) << text;
}

TEST(InspectExportTest, NamesAPixelBoxInputRange) {
  psaq::testing::TempDir dir;
  const std::string text = InspectFile(WriteExport(dir, InputRange::kPixelBox));
  EXPECT_TRUE(Contains(text, "(weights per_channel, activation ranges minmax, input over the "
                             "pixel box)"))
      << text;
}

TEST(InspectExportTest, MissingManifestIsANoteAndACorruptOneAnError) {
  psaq::testing::TempDir dir;
  const std::string path = WriteExport(dir);
  std::filesystem::remove(ManifestPath(path));
  const std::string text = InspectFile(path);
  EXPECT_TRUE(Contains(text, ManifestPath(path) + " not found")) << text;
  dir.Write("tiny_w4a8.manifest.json", "{ not json");
  EXPECT_THROW(InspectFile(path), std::runtime_error);
}

}  // namespace
}  // namespace psaq::quant
