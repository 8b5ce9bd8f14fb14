#include "quant/inspect.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
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
  int64_t weights = 0, weights4 = 0, activations = 0, activations8 = 0;
  double scale_min = 1e30, scale_max = 0;
  for (const auto& p : manifest["points"]) {
    if (p["kind"] == "weight") {
      ++weights;
      weights4 += p["bits"] == 4;
      scale_min = std::min(scale_min, p["scale_min"].get<double>());
      scale_max = std::max(scale_max, p["scale_max"].get<double>());
    } else {
      ++activations;
      activations8 += p["bits"] == 8;
    }
  }
  ASSERT_GT(weights4, 0);
  EXPECT_TRUE(Contains(text, "quant points  " + std::to_string(weights) +
                                 " weight points (4 bits: " + std::to_string(weights4) + ", 8 bits: 1), " +
                                 std::to_string(activations) +
                                 " activation points (8 bits: " + std::to_string(activations8) +
                                 ", 32 bits: " + std::to_string(activations - activations8) + ")"))
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

TEST(InspectExportTest, SaysPlainlyWhatItDidNotCheck) {
  psaq::testing::TempDir dir;
  const std::string text = InspectFile(WriteExport(dir));
  EXPECT_TRUE(Contains(text,
                       "checked       header and metadata, manifest when present; tensor "
                       "values not read (psaq eval loads and checks them)"))
      << text;
  EXPECT_TRUE(Contains(InspectFile(Golden("vit_fmnist")),
                       "checked       header and metadata; tensor values not read"));
}

// The message of the std::runtime_error InspectFile(path) throws ("" and a failure if none).
std::string InspectError(const std::string& path) {
  try {
    InspectFile(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "InspectFile(" << path << ") succeeded";
  return "";
}

// Rewrites the export's metadata (its tensors and its manifest unchanged).
void EditMetadata(const std::string& path,
                  const std::function<void(std::map<std::string, std::string>&)>& edit) {
  model::SafetensorsFile file = model::ReadSafetensors(path);
  edit(file.metadata);
  model::WriteSafetensors(path, file.tensors, file.metadata);
}

// Rewrites the manifest beside `path`.
void EditManifest(const std::string& path, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json manifest;
  std::ifstream(ManifestPath(path)) >> manifest;
  edit(manifest);
  std::ofstream(ManifestPath(path)) << manifest.dump(2);
}

// The index in the manifest's points of the first point of `kind`.
size_t FirstPoint(const nlohmann::json& manifest, const std::string& kind) {
  for (size_t i = 0; i < manifest["points"].size(); ++i) {
    if (manifest["points"][i]["kind"] == kind) return i;
  }
  throw std::logic_error("no " + kind + " point");
}

TEST(InspectExportTest, RefusesBitWidthsAndPointsItCannotShow) {
  // It used to show "bits W33A8" without a word.
  psaq::testing::TempDir dir;
  const std::string path = WriteExport(dir);
  EditMetadata(path, [](auto& m) { m["w_bits"] = "33"; });
  std::string message = InspectError(path);
  EXPECT_EQ(message, path + ": metadata w_bits = '33' is not a bit width (2..8 or 32)");

  WriteExport(dir);
  EditMetadata(path, [](auto& m) {
    nlohmann::json points = nlohmann::json::parse(m["quant_points"]);
    points[3]["bits"] = 1;
    m["quant_points"] = points.dump();
  });
  message = InspectError(path);
  EXPECT_NE(message.find(path + ": quant point '"), std::string::npos) << message;
  EXPECT_NE(message.find("' bits = '1' is not a bit width"), std::string::npos) << message;

  WriteExport(dir);
  EditMetadata(path, [](auto& m) {
    nlohmann::json points = nlohmann::json::parse(m["quant_points"]);
    points[0]["kind"] = "bias";
    m["quant_points"] = points.dump();
  });
  EXPECT_NE(InspectError(path).find("has kind 'bias' (expected weight or activation)"),
            std::string::npos);

  // A quantized weight whose codes are gone.
  WriteExport(dir);
  model::SafetensorsFile file = model::ReadSafetensors(path);
  std::vector<std::pair<std::string, at::Tensor>> kept;
  for (auto& entry : file.tensors) {
    if (entry.first != "head.weight.scale") kept.push_back(entry);
  }
  model::WriteSafetensors(path, kept, file.metadata);
  EXPECT_EQ(InspectError(path), path + ": tensor 'head.weight.scale' is missing");
}

TEST(InspectExportTest, RefusesManifestScalesAndRangesThatAreNotSane) {
  // It used to show NaN scales and reversed ranges.
  psaq::testing::TempDir dir;
  const std::string path = WriteExport(dir);
  const std::string manifest = ManifestPath(path);
  struct Case {
    std::string kind, key;
    nlohmann::json value;
    std::string expected;
  };
  for (const Case& c : std::vector<Case>{
           {"weight", "scale_min", nullptr, "has no number \"scale_min\""},  // NaN, as JSON has it
           {"weight", "scale_min", 1e-45, "scale_min 1e-45 is outside psaq's scale range"},
           {"weight", "scale_max", 3e38, "scale_max 3e+38 is outside psaq's scale range"},
           {"weight", "scale_mean", 1e-3, "are not ordered min <= mean <= max"},
           {"weight", "shape", nlohmann::json::array({1, 2}), "differs from the export's tensor"},
           {"activation", "min", 1e6, "has min > max"},
           {"activation", "scale", 3e38, "scale 3e+38 is outside psaq's scale range"},
           {"activation", "zero_point", 300, "zero point 300 is outside [0, 255] at 8 bits"}}) {
    SCOPED_TRACE(c.kind + " " + c.key);
    WriteExport(dir);
    EditManifest(path,
                 [&](nlohmann::json& m) { m["points"][FirstPoint(m, c.kind)][c.key] = c.value; });
    const std::string message = InspectError(path);
    EXPECT_EQ(message.rfind(manifest + ": point '", 0), 0u) << message;
    EXPECT_NE(message.find(c.expected), std::string::npos) << message;
  }
}

TEST(InspectExportTest, FlagsAManifestThatContradictsTheExport) {
  psaq::testing::TempDir dir;
  const std::string path = WriteExport(dir);
  const std::string manifest = ManifestPath(path);
  EditManifest(path, [](nlohmann::json& m) { m["w_bits"] = "8"; });
  EXPECT_EQ(InspectError(path), manifest + ": disagrees with the export " + path +
                                    " on \"w_bits\": \"8\" here, \"4\" in the export");

  WriteExport(dir);
  EditManifest(path, [](nlohmann::json& m) { m["config"]["depth"] = 12; });
  EXPECT_NE(InspectError(path).find("on \"config\""), std::string::npos);

  WriteExport(dir);
  EditManifest(path, [](nlohmann::json& m) { m["points"][1]["bits"] = 2; });
  EXPECT_NE(InspectError(path).find(manifest + ": point #1 is "), std::string::npos);

  WriteExport(dir);
  EditManifest(path, [](nlohmann::json& m) { m["points"].erase(m["points"].size() - 1); });
  EXPECT_NE(InspectError(path).find(" points, the export "), std::string::npos);

  // Another export's manifest (W8 instead of W4) beside this one.
  WriteExport(dir);
  EditMetadata(path, [](auto& m) { m["created"] = "2001-01-01T00:00:00Z"; });
  EXPECT_NE(InspectError(path).find("on \"created\""), std::string::npos);
}

TEST(InspectTest, FifoFileOrManifestIsRefusedWithoutBlocking) {
  // psaq inspect --file=<FIFO> used to block forever.
  psaq::testing::TempDir dir;
  const std::string fifo = dir.Sub("pipe.safetensors");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  try {
    InspectFile(fifo);
    ADD_FAILURE() << "no error";
  } catch (const model::SafetensorsError& e) {
    EXPECT_EQ(std::string(e.what()), fifo +
                                         ": not a regular file (a FIFO); psaq reads model files "
                                         "only from regular files");
  }
  const std::string path = WriteExport(dir);
  std::filesystem::remove(ManifestPath(path));
  ASSERT_EQ(::mkfifo(ManifestPath(path).c_str(), 0600), 0);
  EXPECT_EQ(InspectError(path).rfind(ManifestPath(path) + ": not a regular file (a FIFO)", 0), 0u);
}

TEST(InspectTest, ConfigFarLargerThanTheTensorsIsAnError) {
  psaq::testing::TempDir dir;
  model::SafetensorsFile file = model::ReadSafetensors(Golden("vit_fmnist"));
  nlohmann::json config = nlohmann::json::parse(file.metadata.at("config"));
  config["depth"] = 2000;
  file.metadata["config"] = config.dump();
  const std::string path = dir.Sub("big.safetensors");
  model::WriteSafetensors(path, file.tensors, file.metadata);
  EXPECT_EQ(InspectError(path).rfind(path + ": the config describes a model of ", 0), 0u);
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
