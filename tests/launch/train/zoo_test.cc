// The shipped Fashion-MNIST teachers (model/zoo/): each loads strictly, reaches the top-1 its
// metadata records on the 10,000 test images (re-evaluated here), and was trained on the
// Fashion-MNIST training set installed on this machine (same content checksum).
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "launch/train/train.h"
#include "model/data/idx_dataset.h"
#include "model/registry.h"
#include "model/safetensors.h"

namespace psaq::train {
namespace {

// The recorded top-1 is printed with two decimals by `psaq train` (quant::Evaluate, 64-image
// batches over the ranks); re-evaluating in other batches may flip a near-tie or two: 0.05 points
// is 5 of 10,000 images.
constexpr double kTop1TolerancePoints = 0.05;
// What issue 6 asks of each shipped teacher.
constexpr double kGoalTop1 = 90.0;
// Shipped as float32 "a few MB at most".
constexpr std::uintmax_t kMaxFileBytes = 4u << 20;

std::string ZooPath(const std::string& file) {
  return std::string(PSAQ_TEST_DATA_DIR) + "/../../model/zoo/" + file;
}

const model::FashionMnist& Split(const std::string& split) {
  static const model::FashionMnist train(model::kDebianFashionMnistDir, "train");
  static const model::FashionMnist test(model::kDebianFashionMnistDir, "test");
  return split == "train" ? train : test;
}

class ZooTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ZooTest, ReachesItsRecordedTop1AndWasTrainedOnTheInstalledData) {
  const std::string path = ZooPath(GetParam());
  ASSERT_TRUE(std::filesystem::exists(path)) << path;
  EXPECT_LE(std::filesystem::file_size(path), kMaxFileBytes);
  const model::SafetensorsFile file = model::ReadSafetensorsHeader(path);
  for (const auto& [name, tensor] : file.tensors) EXPECT_EQ(tensor.scalar_type(), at::kFloat) << name;
  for (const char* key : {"test_top1", "train_data_checksum", "test_data_checksum",
                          "train_command", "train_seed", "psaq_version"}) {
    ASSERT_TRUE(file.metadata.count(key)) << path << " has no metadata '" << key << "'";
  }
  EXPECT_EQ(file.metadata.at("train_data_checksum"),
            model::FormatChecksum(Split("train").ContentChecksum()));
  EXPECT_EQ(file.metadata.at("test_data_checksum"),
            model::FormatChecksum(Split("test").ContentChecksum()));
  const double recorded = std::stod(file.metadata.at("test_top1"));
  EXPECT_GE(recorded, kGoalTop1) << path;

  const model::ModelPtr m = model::LoadModel(path);
  const EvalResult result = Evaluate(*m, Split("test"), 1000, nullptr);
  EXPECT_EQ(result.count, 10000);
  EXPECT_NEAR(result.top1(), recorded, kTop1TolerancePoints) << path;
}

INSTANTIATE_TEST_SUITE_P(Shipped, ZooTest,
                         ::testing::Values("fmnist_swin.safetensors", "fmnist_vit.safetensors"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param.substr(0, info.param.find('.'));
                         });

}  // namespace
}  // namespace psaq::train
