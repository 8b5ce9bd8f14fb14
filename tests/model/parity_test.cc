// Numerical parity with timm 1.0.29 on every golden fixture pair in GoldenDir():
// <name>.weights.safetensors (timm state dict + arch/config metadata) and <name>.io.safetensors
// (inputs and float64 reference outputs; see tests/data/golden/README.md). The model is built
// through LoadModel, so this also covers config parsing and strict loading.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "model/registry.h"
#include "model/safetensors.h"
#include "tests/model/tap_observers.h"
#include "tests/testing/tensor_near.h"
#include "tests/testing/tolerances.h"

namespace psaq::model {
namespace {

namespace fs = std::filesystem;
using psaq::testing::CompareTensors;
using psaq::testing::kFloat32ParityRel;
using psaq::testing::kFloat64ParityRel;

const std::string kWeightsSuffix = ".weights.safetensors";
const std::string kIoSuffix = ".io.safetensors";

// Names <name> with both <name>.weights.safetensors and <name>.io.safetensors in `dir`, sorted.
std::vector<std::string> GoldenPairs(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (file.size() <= kWeightsSuffix.size() ||
        file.compare(file.size() - kWeightsSuffix.size(), kWeightsSuffix.size(), kWeightsSuffix))
      continue;
    const std::string name = file.substr(0, file.size() - kWeightsSuffix.size());
    if (fs::exists(fs::path(dir) / (name + kIoSuffix))) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Largest ratio max|out - ref| / max|ref| seen per quantity, for the report line.
struct Worst {
  double logits64 = 0, blocks64 = 0, av64 = 0, logits32 = 0;
};

// Compares `actual` to `expected` within `tol`, folding the ratio into `worst`.
void Check(const at::Tensor& actual, const at::Tensor& expected, double tol,
           const std::string& what, double* worst) {
  EXPECT_TRUE(psaq::testing::TensorsNearRel(actual, expected, tol, what));
  if (actual.sizes() == expected.sizes()) {
    *worst = std::max(*worst, CompareTensors(actual, expected).ratio);
  }
}

void CheckModel(const std::string& dir, const std::string& name) {
  SCOPED_TRACE("golden model " + name);
  const std::string weights = (fs::path(dir) / (name + kWeightsSuffix)).string();
  const SafetensorsFile io = ReadSafetensors((fs::path(dir) / (name + kIoSuffix)).string());
  ModelPtr model = LoadModel(weights);
  model->eval();
  torch::NoGradGuard no_grad;
  Worst worst;

  // float32 path: the float32 input against the float64 reference logits.
  Check(model->forward(io.Get("input")), io.Get("logits64"), kFloat32ParityRel, "logits (f32)",
        &worst.logits32);

  // float64 path, with the block features captured through the feature taps.
  model->to(at::kDouble);
  testing::FeatureRecorder features;
  ScopedTapObserver scoped(model->taps(), &features, TapMask(TapKind::kFeature));
  Check(model->forward(io.Get("input64")), io.Get("logits64"), kFloat64ParityRel, "logits64",
        &worst.logits64);
  const std::vector<std::string>& blocks = model->block_paths();
  ASSERT_FALSE(blocks.empty());
  ASSERT_FALSE(io.Has("block_out64." + std::to_string(blocks.size())))
      << "the fixture has more blocks than the model (" << blocks.size() << ")";
  for (size_t i = 0; i < blocks.size(); ++i) {
    const std::string idx = std::to_string(i);
    ASSERT_EQ(features.features.count(blocks[i] + ".out"), 1u) << blocks[i];
    ASSERT_EQ(features.features.count(blocks[i] + ".av_mean"), 1u) << blocks[i];
    Check(features.features.at(blocks[i] + ".out"), io.Get("block_out64." + idx), kFloat64ParityRel,
          "block_out64." + idx + " (" + blocks[i] + ".out)", &worst.blocks64);
    Check(features.features.at(blocks[i] + ".av_mean"), io.Get("av_headmean64." + idx),
          kFloat64ParityRel, "av_headmean64." + idx + " (" + blocks[i] + ".av_mean)", &worst.av64);
  }
  std::cout << "[ parity   ] " << name << " (" << blocks.size() << " blocks): max ratio f64 logits "
            << worst.logits64 << ", f64 block outputs " << worst.blocks64 << ", f64 A·V head-mean "
            << worst.av64 << ", f32 logits " << worst.logits32 << std::endl;
  ::testing::Test::RecordProperty(name + ".f64_logits", std::to_string(worst.logits64));
  ::testing::Test::RecordProperty(name + ".f64_blocks", std::to_string(worst.blocks64));
  ::testing::Test::RecordProperty(name + ".f64_av", std::to_string(worst.av64));
  ::testing::Test::RecordProperty(name + ".f32_logits", std::to_string(worst.logits32));
}

TEST(ParityTest, EveryGoldenModelMatchesTimm) {
  const std::string dir = psaq::testing::GoldenDir();
  const std::vector<std::string> names = GoldenPairs(dir);
  ASSERT_FALSE(names.empty()) << "no <name>.weights.safetensors / <name>.io.safetensors pair in "
                              << dir << " (set PSAQ_GOLDEN_DIR)";
  for (const std::string& name : names) CheckModel(dir, name);
}

}  // namespace
}  // namespace psaq::model
