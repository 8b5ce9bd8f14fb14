#include "model/data/dataset.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "model/data/idx_dataset.h"
#include "model/data/image_folder.h"
#include "model/data/preprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/tensor_near.h"
#include "tests/testing/tolerances.h"

namespace psaq::model {
namespace {

using ::psaq::testing::kFloat32KernelRel;
using ::psaq::testing::TempDir;

ModelConfig FashionConfig() {
  ModelConfig c;
  c.arch = Arch::kViT;
  c.vit.img_size = 28;
  c.vit.patch_size = 4;
  c.vit.in_chans = 1;
  c.vit.num_classes = 10;
  c.preprocess.mean = {0.2860};
  c.preprocess.std = {0.3530};
  c.preprocess.crop_pct = 1.0;
  return c;
}

// A dataset whose odd indices fail to decode; even index i is a 30x40 RGB image of value i.
class HalfBrokenDataset : public ImageDataset {
 public:
  int64_t size() const override { return 6; }
  const std::vector<std::string>& class_names() const override { return names_; }
  bool Decode(int64_t index, Sample* out, std::string* error) const override {
    TORCH_CHECK(index >= 0 && index < size(), "index out of range");
    if (index % 2 == 1) {
      *error = SourceOf(index) + ": corrupt";
      return false;
    }
    out->image = at::full({30, 40, 3}, index, at::kByte);
    out->label = index / 2;
    return true;
  }
  std::string SourceOf(int64_t index) const override { return "mem/" + std::to_string(index); }
  std::string Describe() const override { return "half broken"; }
  uint32_t ContentChecksum() const override { return 0; }

 private:
  std::vector<std::string> names_ = {"a", "b", "c"};
};

TEST(MakeBatchTest, SkipsFailuresAndReportsThemPerIndex) {
  HalfBrokenDataset data;
  const ModelConfig config = FashionConfig();
  Batch batch = MakeBatch(data, {4, 1, 0, 3, 4}, config);
  ASSERT_EQ(batch.images.sizes(), (std::vector<int64_t>{3, 1, 28, 28}));
  EXPECT_EQ(batch.images.scalar_type(), at::kFloat);
  EXPECT_EQ(batch.indices, (std::vector<int64_t>{4, 0, 4}));
  EXPECT_TRUE(at::equal(batch.labels, at::tensor({2, 0, 2}, at::kLong)));
  ASSERT_EQ(batch.failures.size(), 2u);
  EXPECT_EQ(batch.failures[0].index, 1);
  EXPECT_EQ(batch.failures[0].error, "mem/1: corrupt");
  EXPECT_EQ(batch.failures[1].index, 3);
  // Rows are the preprocessed images: a constant image stays constant.
  EXPECT_TENSOR_NEAR_REL(batch.images[0],
                         at::full({1, 28, 28}, (4 / 255.0 - 0.2860) / 0.3530, at::kDouble),
                         kFloat32KernelRel);
}

TEST(MakeBatchTest, AllFailedGivesAnEmptyBatchAndBadIndexThrows) {
  HalfBrokenDataset data;
  Batch batch = MakeBatch(data, {1, 5}, FashionConfig());
  EXPECT_EQ(batch.images.sizes(), (std::vector<int64_t>{0, 1, 28, 28}));
  EXPECT_EQ(batch.labels.numel(), 0);
  EXPECT_EQ(batch.failures.size(), 2u);
  EXPECT_THROW(MakeBatch(data, {0, 6}, FashionConfig()), c10::Error);
  EXPECT_THROW(MakeBatch(data, {-1}, FashionConfig()), c10::Error);
}

TEST(MakeBatchTest, ImageFolderWithACorruptFileTo28x28Grey) {
  TempDir dir;
  dir.Write("a/bad.png", "\x89PNG\r\n\x1a\n truncated");
  dir.Write("b/also-bad.jpg", "not a jpeg");
  ImageFolder folder(dir.path().string());
  Batch batch = MakeBatch(folder, {0, 1}, FashionConfig());
  EXPECT_EQ(batch.images.size(0), 0);
  ASSERT_EQ(batch.failures.size(), 2u);
  EXPECT_NE(batch.failures[0].error.find(dir.Sub("a/bad.png")), std::string::npos);
  EXPECT_NE(batch.failures[1].error.find(dir.Sub("b/also-bad.jpg")), std::string::npos);
}

TEST(MakeBatchTest, FashionMnistBatchIsTheNormalisedPixels) {
  FashionMnist test(kDebianFashionMnistDir, "test");
  Batch batch = MakeBatch(test, {0, 1, 2, 9999}, FashionConfig());
  ASSERT_EQ(batch.images.sizes(), (std::vector<int64_t>{4, 1, 28, 28}));
  EXPECT_TRUE(batch.failures.empty());
  EXPECT_EQ(batch.labels[0].item<int64_t>(), 9);
  EXPECT_EQ(batch.labels[1].item<int64_t>(), 2);
  EXPECT_EQ(batch.labels[2].item<int64_t>(), 1);
  EXPECT_EQ(batch.labels[3].item<int64_t>(), test.labels()[9999].item<int64_t>());
  at::Tensor raw =
      at::stack({test.images()[0], test.images()[1], test.images()[2], test.images()[9999]})
          .unsqueeze(1)
          .to(at::kDouble);  // [4, 1, 28, 28]
  EXPECT_TENSOR_NEAR_REL(batch.images, (raw / 255.0 - 0.2860) / 0.3530, kFloat32KernelRel);
  auto [lo, hi] = NormalisedPixelRange(FashionConfig());
  EXPECT_GE(batch.images.min().item<float>(), lo.item<float>());
  EXPECT_LE(batch.images.max().item<float>(), hi.item<float>());
}

}  // namespace
}  // namespace psaq::model
