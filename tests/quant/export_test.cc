// Export/import round trips (bit-identical outputs) and clear errors for corrupted exports.
#include "quant/export.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "model/safetensors.h"
#include "quant/calibration.h"
#include "quant/export_format.h"
#include "tests/testing/tiny_models.h"
#include "tests/testing/tensor_near.h"

namespace psaq::quant {
namespace {

using json = nlohmann::json;

std::string TempPath(const std::string& stem) {
  return ::testing::TempDir() + "/" + stem + "_" + std::to_string(::getpid()) + ".safetensors";
}

std::unique_ptr<QuantizedModel> Calibrated(const std::string& arch, int w_bits, int a_bits) {
  auto q =
      std::make_unique<QuantizedModel>(testing::TinyModel(arch), testing::Bits(w_bits, a_bits));
  Calibrate(*q, testing::Batches(testing::TinyConfig(arch), 2, 8, 303), nullptr);
  return q;
}

at::Tensor Input(const std::string& arch) {
  return testing::Batches(testing::TinyConfig(arch), 1, 4, 404)[0];
}

class ExportRoundTripTest : public ::testing::TestWithParam<std::tuple<std::string, int, int>> {};

TEST_P(ExportRoundTripTest, ImportedModelIsBitIdentical) {
  const auto& [arch, w_bits, a_bits] = GetParam();
  auto q = Calibrated(arch, w_bits, a_bits);
  const std::string path = TempPath("rt_" + arch + std::to_string(w_bits) + std::to_string(a_bits));
  ExportOptions options;
  options.method = "noise";
  options.num_samples = 16;
  options.tool = "export_test";
  ExportQuantizedModel(*q, path, options);

  ImportedModel imported = ImportQuantizedModel(path);
  ASSERT_NE(imported.model, nullptr);
  EXPECT_EQ(imported.model->mode(), QuantizedModel::Mode::kQuantized);
  const at::Tensor x = Input(arch);
  at::NoGradGuard no_grad;
  EXPECT_TENSOR_IDENTICAL(imported.model->Forward(x), q->Forward(x));
  for (int id : imported.model->weight_taps()) {
    // Quantized weights use the stored codes; 32-bit weights stay live float parameters.
    EXPECT_EQ(imported.model->weight_frozen(id), w_bits != kBitsOff)
        << imported.model->tap(id).name;
  }
  // Exporting the imported model again gives the same codes, scales and ranges.
  const std::string again = TempPath("rt2_" + arch);
  ExportQuantizedModel(*imported.model, again, options);
  const auto first = model::ReadSafetensors(path).ToMap();
  const auto second = model::ReadSafetensors(again).ToMap();
  ASSERT_EQ(first.size(), second.size());
  for (const auto& [name, t] : first) {
    ASSERT_EQ(second.count(name), 1u) << name;
    EXPECT_TRUE(at::equal(t, second.at(name))) << name;
  }

  const auto& meta = imported.metadata;
  EXPECT_EQ(meta.at("w_bits"), std::to_string(w_bits));
  EXPECT_EQ(meta.at("a_bits"), std::to_string(a_bits));
  EXPECT_EQ(meta.at("method"), "noise");
  EXPECT_EQ(meta.at("num_samples"), "16");
  EXPECT_EQ(meta.at("tool"), "export_test");
  EXPECT_EQ(meta.at("psaq_version"), PSAQ_VERSION);
  EXPECT_EQ(meta.at("arch"), arch);
  EXPECT_EQ(meta.count("config"), 1u);
  EXPECT_EQ(meta.at("created").size(), 20u);  // 2026-01-01T00:00:00Z
  // Integer weights are int8 codes with per-channel float32 scales; 32-bit weights stay float.
  const auto tensors = model::ReadSafetensors(path);
  const std::string first_weight = q->tap(q->weight_taps().front()).name;
  if (w_bits == kBitsOff) {
    EXPECT_EQ(tensors.Get(first_weight).scalar_type(), at::kFloat);
    EXPECT_FALSE(tensors.Has(first_weight + ".scale"));
  } else {
    EXPECT_EQ(tensors.Get(first_weight).scalar_type(), at::kChar);
    EXPECT_EQ(tensors.Get(first_weight + ".scale").dim(), 1);
  }

  // The manifest lists every quantization point in forward order.
  std::ifstream in(ManifestPath(path));
  ASSERT_TRUE(in.good()) << ManifestPath(path);
  const json manifest = json::parse(in);
  const json& points = manifest.at("points");
  std::vector<std::string> expected;
  for (const model::TapInfo& info : q->model().taps().taps()) {
    if (info.kind != model::TapKind::kFeature) expected.push_back(info.name);
  }
  ASSERT_EQ(points.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(points[i].at("name"), expected[i]);
    if (points[i].at("kind") == "activation") {
      EXPECT_EQ(points[i].at("bits"), IsSoftmaxTap(expected[i]) ? kBitsOff : a_bits);
      // A 32-bit (float) point keeps its observed range but has no grid.
      EXPECT_EQ(points[i].contains("scale") && points[i].contains("zero_point"),
                points[i].at("bits") != kBitsOff);
      EXPECT_TRUE(points[i].contains("min") && points[i].contains("max"));
    } else {
      EXPECT_EQ(points[i].at("bits"), w_bits);
      EXPECT_EQ(points[i].contains("scale_max"), w_bits != kBitsOff);
      if (w_bits != kBitsOff) {
        EXPECT_GT(points[i].at("scale_max").get<double>(), 0.0);
      }
    }
  }
  EXPECT_EQ(manifest.at("method"), "noise");
  for (const std::string& p : {path, again, ManifestPath(path), ManifestPath(again)}) {
    std::remove(p.c_str());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Bits, ExportRoundTripTest,
    ::testing::Values(std::make_tuple("vit", 8, 8), std::make_tuple("vit", 4, 8),
                      std::make_tuple("vit", 3, 8), std::make_tuple("vit", 2, 4),
                      std::make_tuple("vit", 32, 8), std::make_tuple("swin", 8, 8),
                      std::make_tuple("swin", 4, 8), std::make_tuple("swin", 3, 6)),
    [](const auto& info) {
      return std::get<0>(info.param) + "_W" + std::to_string(std::get<1>(info.param)) + "A" +
             std::to_string(std::get<2>(info.param));
    });

TEST(ExportTest, ManifestPathReplacesTheExtension) {
  EXPECT_EQ(ManifestPath("/a/b/model_w4a8.safetensors"), "/a/b/model_w4a8.manifest.json");
  EXPECT_EQ(ManifestPath("/a/b/model"), "/a/b/model.manifest.json");
}

TEST(ExportTest, PerTapBitWidthsRoundTrip) {
  // W4/A8 with an 8-bit head, a 32-bit (float) first weight and a 6-bit input over the pixel box.
  QuantConfig config = testing::Bits(4, 8);
  config.bits_overrides = {{"head.weight", 8}, {"patch_embed.proj.weight", 32}, {"input", 6}};
  config.input_range = InputRange::kPixelBox;
  QuantizedModel q(testing::TinyModel("vit"), config);
  Calibrate(q, testing::Batches(testing::TinyConfig("vit"), 2, 8, 303), nullptr);
  const std::string path = TempPath("overrides");
  ExportQuantizedModel(q, path);
  ImportedModel imported = ImportQuantizedModel(path);
  const QuantizedModel& r = *imported.model;
  EXPECT_EQ(r.config().bits_overrides, config.bits_overrides);
  EXPECT_EQ(r.config().input_range, InputRange::kPixelBox);
  EXPECT_EQ(r.activation_quantizer(r.TapId("input")).range(),
            q.activation_quantizer(q.TapId("input")).range());
  EXPECT_EQ(r.weight_quantizer(r.TapId("head.weight")).bits(), 8);
  EXPECT_EQ(r.weight_quantizer(r.TapId("patch_embed.proj.weight")).bits(), kBitsOff);
  EXPECT_FALSE(r.weight_frozen(r.TapId("patch_embed.proj.weight")));
  EXPECT_EQ(r.activation_quantizer(r.TapId("input")).bits(), 6);
  const auto file = model::ReadSafetensors(path);
  EXPECT_EQ(file.Get("patch_embed.proj.weight").scalar_type(), at::kFloat);
  EXPECT_FALSE(file.Has("patch_embed.proj.weight.scale"));
  const at::Tensor x = Input("vit");
  at::NoGradGuard no_grad;
  EXPECT_TENSOR_IDENTICAL(imported.model->Forward(x), q.Forward(x));
  // A file written before "input_range" was recorded reads as calibrated.
  std::map<std::string, std::string> metadata = file.metadata;
  ASSERT_EQ(metadata.erase("input_range"), 1u);
  const std::string old_path = TempPath("before_input_range");
  model::WriteSafetensors(old_path, file.tensors, metadata);
  EXPECT_EQ(ImportQuantizedModel(old_path).model->config().input_range, InputRange::kCalibrated);
  std::remove(old_path.c_str());
  std::remove(path.c_str());
  std::remove(ManifestPath(path).c_str());
}

TEST(ExportTest, RefusesAnUncalibratedModel) {
  QuantizedModel q(testing::TinyModel("vit"), QuantConfig{});
  EXPECT_THROW(ExportQuantizedModel(q, TempPath("uncalibrated")), c10::Error);
}

// Each corruption edits the file (tensors and metadata) and must make the import fail with a
// message naming the file and the problem.
struct Corruption {
  std::string name;
  std::string expected_message;
  std::function<void(std::vector<std::pair<std::string, at::Tensor>>&,
                     std::map<std::string, std::string>&)>
      edit;
};

class CorruptExportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = new std::string(TempPath("corrupt_source"));
    auto q = Calibrated("vit", 4, 8);
    ExportQuantizedModel(*q, *path_);
  }
  static void TearDownTestSuite() {
    std::remove(path_->c_str());
    std::remove(ManifestPath(*path_).c_str());
    delete path_;
  }

  void ExpectImportFails(const Corruption& c) {
    model::SafetensorsFile file = model::ReadSafetensors(*path_);
    std::vector<std::pair<std::string, at::Tensor>> tensors = file.tensors;
    std::map<std::string, std::string> metadata = file.metadata;
    c.edit(tensors, metadata);
    const std::string bad = TempPath("corrupt_" + c.name);
    model::WriteSafetensors(bad, tensors, metadata);
    try {
      ImportQuantizedModel(bad);
      ADD_FAILURE() << c.name << ": the import succeeded";
    } catch (const std::runtime_error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(bad), std::string::npos) << c.name << ": " << message;
      EXPECT_NE(message.find(c.expected_message), std::string::npos) << c.name << ": " << message;
    }
    std::remove(bad.c_str());
  }

  static std::string* path_;
};
std::string* CorruptExportTest::path_ = nullptr;

using Tensors = std::vector<std::pair<std::string, at::Tensor>>;
using Metadata = std::map<std::string, std::string>;

at::Tensor& Find(Tensors& tensors, const std::string& name) {
  for (auto& [n, t] : tensors) {
    if (n == name) return t;
  }
  throw std::logic_error("no tensor " + name);
}

TEST_F(CorruptExportTest, MissingTensor) {
  ExpectImportFails(
      {"missing", "tensor 'blocks.0.attn.qkv.weight' is missing", [](Tensors& t, Metadata&) {
         t.erase(
             std::remove_if(t.begin(), t.end(),
                            [](const auto& p) { return p.first == "blocks.0.attn.qkv.weight"; }),
             t.end());
       }});
}

TEST_F(CorruptExportTest, IntegerCodeOutsideTheBitWidth) {
  ExpectImportFails({"range", "outside the 4-bit range [-8, 7]", [](Tensors& t, Metadata&) {
                       Find(t, "blocks.1.mlp.fc1.weight") =
                           Find(t, "blocks.1.mlp.fc1.weight").clone();
                       Find(t, "blocks.1.mlp.fc1.weight").view(-1)[3] = 9;
                     }});
}

TEST_F(CorruptExportTest, ScaleOfTheWrongShape) {
  ExpectImportFails({"scale_shape", "'head.weight.scale' has shape [9]", [](Tensors& t, Metadata&) {
                       Find(t, "head.weight.scale") =
                           Find(t, "head.weight.scale").slice(0, 0, 9).clone();
                     }});
}

TEST_F(CorruptExportTest, NonPositiveScale) {
  ExpectImportFails({"scale_zero", "non-finite or non-positive scale", [](Tensors& t, Metadata&) {
                       Find(t, "head.weight.scale") = at::zeros_like(Find(t, "head.weight.scale"));
                     }});
}

TEST_F(CorruptExportTest, WeightScalesOutsidePsaqsRange) {
  // 1e-45 (a float32 denormal) and 3e38 used to pass; the range is [2^-23, 1e8]
  // (quant/export_format.h).
  for (const double bad : {1e-45, 1e-9, 3e38, 1e9}) {
    SCOPED_TRACE(bad);
    ExpectImportFails(
        {"scale_range", "'head.weight.scale' holds scales in [", [bad](Tensors& t, Metadata&) {
           Find(t, "head.weight.scale") = Find(t, "head.weight.scale").clone();
           Find(t, "head.weight.scale")[3] = bad;
         }});
  }
  ExpectImportFails({"scale_nan", "'head.weight.scale' holds a non-finite or non-positive scale",
                     [](Tensors& t, Metadata&) {
                       Find(t, "head.weight.scale") = Find(t, "head.weight.scale").clone();
                       Find(t, "head.weight.scale")[0] = std::nan("");
                     }});
}

TEST_F(CorruptExportTest, ActivationRangeWhoseScaleIsOutsidePsaqsRange) {
  // A finite range of +-3e38 gives an infinite scale (max - min overflows float32).
  for (const auto& [lo, hi, message] : std::vector<std::tuple<float, float, std::string>>{
           {-3e38f, 3e38f, "'act.embed.out.scale' holds a non-finite or non-positive scale"},
           {0.f, 1e12f, "'act.embed.out.scale' holds scales in ["}}) {
    SCOPED_TRACE(message);
    ExpectImportFails({"act_range", message, [lo = lo, hi = hi](Tensors& t, Metadata&) {
                         const std::string name = export_format::ActName("embed.out", "range");
                         Find(t, name) = at::tensor({lo, hi});
                       }});
  }
}

TEST_F(CorruptExportTest, NonFiniteOrIntegerFloatParameters) {
  ExpectImportFails(
      {"nan_param", "NaN or Inf values, first 'norm.weight'", [](Tensors& t, Metadata&) {
         Find(t, "norm.weight") = Find(t, "norm.weight").clone();
         Find(t, "norm.weight")[1] = std::nan("");
       }});
  ExpectImportFails({"int_param", "tensor 'norm.bias' holds Int data", [](Tensors& t, Metadata&) {
                       Find(t, "norm.bias") = Find(t, "norm.bias").to(at::kInt);
                     }});
}

TEST_F(CorruptExportTest, ConfigFarLargerThanTheFileOrDeepMetadata) {
  ExpectImportFails({"big_config", "the config describes a model of", [](Tensors&, Metadata& m) {
                       json config = json::parse(m["config"]);
                       config["embed_dim"] = 3000;
                       m["config"] = config.dump();
                     }});
  ExpectImportFails({"deep_points", "metadata 'quant_points': JSON nests deeper than 64 levels",
                     [](Tensors&, Metadata& m) {
                       m["quant_points"] = std::string(100'000, '[') + std::string(100'000, ']');
                     }});
}

TEST_F(CorruptExportTest, CodesStoredAsFloat) {
  ExpectImportFails({"dtype", "has dtype Float, expected Char", [](Tensors& t, Metadata&) {
                       Find(t, "head.weight") = Find(t, "head.weight").to(at::kFloat);
                     }});
}

TEST_F(CorruptExportTest, BadBitsMetadata) {
  ExpectImportFails(
      {"w_bits", "metadata w_bits = '9'", [](Tensors&, Metadata& m) { m["w_bits"] = "9"; }});
  ExpectImportFails({"a_bits", "metadata a_bits = 'eight'",
                     [](Tensors&, Metadata& m) { m["a_bits"] = "eight"; }});
  // psaq writes digits only (std::to_string); a sign or a space is not its writing.
  ExpectImportFails(
      {"a_bits_sign", "metadata a_bits = '+8'", [](Tensors&, Metadata& m) { m["a_bits"] = "+8"; }});
  ExpectImportFails(
      {"w_bits_space", "metadata w_bits = ' 4'", [](Tensors&, Metadata& m) { m["w_bits"] = " 4"; }});
  ExpectImportFails({"point_bits", "quant point 'input' bits", [](Tensors&, Metadata& m) {
                       json points = json::parse(m["quant_points"]);
                       points[0]["bits"] = 1;
                       m["quant_points"] = points.dump();
                     }});
}

TEST_F(CorruptExportTest, MissingOrForeignMetadata) {
  ExpectImportFails(
      {"format", "not a psaq quantized export", [](Tensors&, Metadata& m) { m.erase("format"); }});
  ExpectImportFails({"quant_points", "metadata 'quant_points' is missing",
                     [](Tensors&, Metadata& m) { m.erase("quant_points"); }});
  ExpectImportFails(
      {"points_order", "quant_points do not match the model's taps", [](Tensors&, Metadata& m) {
         json points = json::parse(m["quant_points"]);
         std::swap(points[1], points[2]);
         m["quant_points"] = points.dump();
       }});
  ExpectImportFails(
      {"config", "metadata has no \"config\"", [](Tensors&, Metadata& m) { m.erase("config"); }});
  ExpectImportFails({"config_shape", "has shape",  // the config no longer matches the tensors
                     [](Tensors&, Metadata& m) {
                       json config = json::parse(m["config"]);
                       config["embed_dim"] = 64;
                       m["config"] = config.dump();
                     }});
  ExpectImportFails({"granularity", "unknown weight granularity",
                     [](Tensors&, Metadata& m) { m["weight_granularity"] = "per_row"; }});
  ExpectImportFails({"input_range", "unknown input range 'box'",
                     [](Tensors&, Metadata& m) { m["input_range"] = "box"; }});
}

TEST_F(CorruptExportTest, ActivationScaleThatDoesNotMatchItsRange) {
  ExpectImportFails({"act_scale", "does not match its range", [](Tensors& t, Metadata&) {
                       const std::string name = export_format::ActName("embed.out", "scale");
                       Find(t, name) = Find(t, name) * 2;
                     }});
}

TEST_F(CorruptExportTest, UnexpectedTensor) {
  ExpectImportFails({"extra", "unexpected tensor 'stray'",
                     [](Tensors& t, Metadata&) { t.emplace_back("stray", at::zeros({2})); }});
}

}  // namespace
}  // namespace psaq::quant
