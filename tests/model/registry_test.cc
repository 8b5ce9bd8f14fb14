// CreateModel / LoadModel / CloneModel: dispatch, strict loading from files, error messages that
// name the file and the key, clone independence.
#include "model/registry.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "model/safetensors.h"
#include "model/state_dict.h"
#include "model/window_attention.h"
#include "tests/model/tap_observers.h"
#include "tests/testing/tensor_near.h"

namespace psaq::model {
namespace {

namespace fs = std::filesystem;

// The repository's own fixtures (not $PSAQ_GOLDEN_DIR): these tests rely on their names.
std::string Fixture(const std::string& name) {
  return std::string(PSAQ_TEST_DATA_DIR) + "/golden/" + name + ".weights.safetensors";
}

// A fresh file path in the test's temp directory.
std::string TempPath(const std::string& stem) {
  return ::testing::TempDir() + "psaq_registry_" + std::to_string(::getpid()) + "_" + stem +
         ".safetensors";
}

// The message of the std::runtime_error `fn` throws ("" if it throws nothing).
template <typename Fn>
std::string RuntimeErrorOf(Fn fn) {
  try {
    fn();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a std::runtime_error";
  return "";
}

TEST(RegistryTest, LoadModelBuildsFromMetadataAndLoadsEveryTensor) {
  const std::string path = Fixture("vit_p4_d48");
  ModelPtr model = LoadModel(path);
  EXPECT_EQ(model->config().name, "vit_p4_d48.weights");
  EXPECT_EQ(model->config().arch, Arch::kViT);
  EXPECT_EQ(model->config().vit.embed_dim, 48);
  const SafetensorsFile file = ReadSafetensors(path);
  const auto params = model->named_parameters();
  EXPECT_EQ(params.size(), file.tensors.size());
  for (const auto& [name, tensor] : file.tensors) {
    ASSERT_TRUE(params.contains(name)) << name;
    EXPECT_TENSOR_IDENTICAL(params[name].detach(), tensor);
  }
}

TEST(RegistryTest, LoadModelNamesTheFileAndKeyOfAWrongShapedTensor) {
  SafetensorsFile file = ReadSafetensors(Fixture("vit_p4_d48"));
  for (auto& [name, tensor] : file.tensors) {
    if (name == "blocks.1.attn.qkv.weight") tensor = at::zeros({7, 48});
  }
  const std::string path = TempPath("wrong_shape");
  WriteSafetensors(path, file.tensors, file.metadata);
  const std::string message = RuntimeErrorOf([&] { LoadModel(path); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("blocks.1.attn.qkv.weight"), std::string::npos) << message;
  fs::remove(path);
}

TEST(RegistryTest, LoadModelWithoutMetadataUsesTheFallbackPreset) {
  at::manual_seed(21);
  ModelPtr source = CreateModel(PresetConfig("deit_tiny_patch16_224"));
  const std::string path = TempPath("timm_model");
  WriteSafetensors(path, StateDict(*source));  // no metadata, like a timm model.safetensors

  const std::string no_fallback = RuntimeErrorOf([&] { LoadModel(path); });
  EXPECT_NE(no_fallback.find(path), std::string::npos) << no_fallback;
  const std::string wrong_arch =
      RuntimeErrorOf([&] { LoadModel(path, "swin_tiny_patch4_window7_224"); });
  EXPECT_NE(wrong_arch.find(path), std::string::npos) << wrong_arch;

  ModelPtr loaded = LoadModel(path, "deit_tiny_patch16_224");
  EXPECT_EQ(loaded->config().vit.embed_dim, 192);
  torch::NoGradGuard no_grad;
  const at::Tensor x = at::randn({1, 3, 224, 224});
  EXPECT_TENSOR_IDENTICAL(loaded->forward(x), source->forward(x));
  fs::remove(path);
}

TEST(RegistryTest, LoadModelIgnoresSwinDerivedBuffersButNotOtherExtraKeys) {
  SafetensorsFile file = ReadSafetensors(Fixture("swin_p4_w7_d16"));
  // What a file saved by an older timm holds besides the parameters.
  file.tensors.emplace_back("layers.0.blocks.1.attn.relative_position_index",
                            RelativePositionIndex(7));
  file.tensors.emplace_back("layers.0.blocks.1.attn_mask", at::zeros({16, 49, 49}));
  const std::string path = TempPath("swin_with_buffers");
  WriteSafetensors(path, file.tensors, file.metadata);
  EXPECT_NO_THROW(LoadModel(path));

  file.tensors.emplace_back("layers.0.blocks.1.attn.bogus", at::zeros({1}));
  WriteSafetensors(path, file.tensors, file.metadata);
  const std::string message = RuntimeErrorOf([&] { LoadModel(path); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("layers.0.blocks.1.attn.bogus"), std::string::npos) << message;
  fs::remove(path);
}

// The fixture's tensors and metadata, with config[key] = value (JSON).
std::string WithConfig(const std::string& stem, const std::string& key, const std::string& value) {
  SafetensorsFile file = ReadSafetensors(Fixture("vit_p4_d48"));
  nlohmann::json config = nlohmann::json::parse(file.metadata.at("config"));
  config[key] = nlohmann::json::parse(value);
  file.metadata["config"] = config.dump();
  const std::string path = TempPath(stem);
  WriteSafetensors(path, file.tensors, file.metadata);
  return path;
}

TEST(RegistryTest, ConfigFarLargerThanTheTensorsIsRefusedBeforeBuilding) {
  // The probe: embed_dim 30000 in a 2.6 MB file asked for one 10.8 GB allocation, depth 10^6
  // built blocks for 45 s toward ~450 GB. Refused now from the config and the file's tensors.
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"embed_dim", "3000"}, {"depth", "1000"}, {"num_classes", "10000000"}}) {
    SCOPED_TRACE(key);
    const std::string path = WithConfig("big_" + key, key, value);
    const std::string message = RuntimeErrorOf([&] { LoadModel(path); });
    EXPECT_EQ(message.rfind(path + ": the config describes a model of ", 0), 0u) << message;
    EXPECT_NE(message.find("far more than the file holds"), std::string::npos) << message;
    fs::remove(path);
  }
  // Past psaq's element limit (model/file_limits.h), the config alone is refused.
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"embed_dim", "30000"}, {"depth", "1000000"}}) {
    SCOPED_TRACE(key);
    const std::string path = WithConfig("huge_" + key, key, value);
    const std::string message = RuntimeErrorOf([&] { LoadModel(path); });
    EXPECT_EQ(message.rfind(path + ": invalid config: the model would have ", 0), 0u) << message;
    fs::remove(path);
  }
}

TEST(RegistryTest, NonFiniteOrIntegerWeightsAreRefused) {
  const SafetensorsFile file = ReadSafetensors(Fixture("vit_p4_d48"));
  const std::string path = TempPath("bad_values");
  for (const std::string edit : {"nan", "inf", "int"}) {
    SCOPED_TRACE(edit);
    std::vector<std::pair<std::string, at::Tensor>> tensors = file.tensors;
    for (auto& [name, t] : tensors) {
      if (name != "blocks.0.mlp.fc1.weight") continue;
      if (edit == "int") {
        t = t.to(at::kInt);
      } else {
        t = t.clone();
        t.view(-1)[5] = edit == "nan" ? std::nan("") : INFINITY;
      }
    }
    WriteSafetensors(path, tensors, file.metadata);
    const std::string message = RuntimeErrorOf([&] { LoadModel(path); });
    EXPECT_NE(message.find(path + ": "), std::string::npos) << message;
    EXPECT_NE(
        message.find(edit == "int" ? "tensor 'blocks.0.mlp.fc1.weight' holds Int data"
                                   : "NaN or Inf values, first 'blocks.0.mlp.fc1.weight' (1 of"),
        std::string::npos)
        << message;
  }
  fs::remove(path);
}

TEST(RegistryTest, DegeneratePreprocessingIsRefused) {
  // A std of 1e-300 turned every pixel into +-inf, and psaq eval scored that, exit 0.
  const SafetensorsFile file = ReadSafetensors(Fixture("vit_p4_d48"));
  const std::string path = TempPath("preprocess");
  for (const auto& [preprocess, reason] : std::vector<std::pair<std::string, std::string>>{
           {R"({"std": 1e-300})", "preprocess std must be in [0.001, 1000], got 1e-300"},
           {R"({"std": 1e300})", "preprocess std must be in [0.001, 1000], got 1e+300"},
           {R"({"mean": 1e300})", "preprocess mean must be finite with |mean| <= 1000"}}) {
    SCOPED_TRACE(preprocess);
    std::map<std::string, std::string> metadata = file.metadata;
    metadata["preprocess"] = preprocess;
    WriteSafetensors(path, file.tensors, metadata);
    const std::string message = RuntimeErrorOf([&] { LoadModel(path); });
    EXPECT_EQ(message.rfind(path + ": invalid config: ", 0), 0u) << message;
    EXPECT_NE(message.find(reason), std::string::npos) << message;
  }
  fs::remove(path);
}

TEST(RegistryTest, UnknownNameThatIsNoFileListsThePresets) {
  const std::string message = RuntimeErrorOf([] { LoadModel("no_such_model"); });
  EXPECT_NE(message.find("no_such_model"), std::string::npos) << message;
  EXPECT_NE(message.find("deit_tiny_patch16_224"), std::string::npos) << message;
}

TEST(RegistryTest, CreateModelRejectsAnInvalidConfig) {
  ModelConfig config = PresetConfig("deit_tiny_patch16_224");
  config.vit.num_heads = 5;  // 192 is not a multiple of 5
  EXPECT_THROW(CreateModel(config), std::invalid_argument);
}

TEST(RegistryTest, CloneModelGivesIdenticalOutputsAndIndependentParameters) {
  ModelPtr model = LoadModel(Fixture("swin_p4_w7_d16"));
  model->to(at::kDouble);
  model->eval();
  model->named_parameters()["head.fc.bias"].set_requires_grad(false);
  ModelPtr clone = CloneModel(*model);
  EXPECT_FALSE(clone->named_parameters()["head.fc.bias"].requires_grad());
  EXPECT_TRUE(clone->named_parameters()["head.fc.weight"].requires_grad());
  EXPECT_EQ(clone->config().name, model->config().name);
  EXPECT_FALSE(clone->is_training());
  EXPECT_EQ(clone->parameters().front().scalar_type(), at::kDouble);

  torch::NoGradGuard no_grad;
  at::manual_seed(4);
  const at::Tensor x = at::randn({2, 3, 112, 112}, at::kDouble);
  const at::Tensor y = model->forward(x);
  EXPECT_TENSOR_IDENTICAL(clone->forward(x), y);

  // Parameters are copies, not shared storage.
  clone->named_parameters()["norm.weight"].add_(1.0);
  EXPECT_TENSOR_IDENTICAL(model->forward(x), y);
  EXPECT_GT((clone->forward(x) - y).abs().max().item<double>(), 0.0);

  // Each model has its own TapSet.
  testing::RecordingObserver rec;
  ScopedTapObserver scoped(clone->taps(), &rec);
  EXPECT_EQ(model->taps().observer(), nullptr);
}

}  // namespace
}  // namespace psaq::model
