#include "quant/evaluate.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <stb/stb_image_write.h>  // implementation in libstb.so

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/data/image_folder.h"
#include "quant/calibration.h"
#include "quant/metrics.h"
#include "tests/testing/temp_dir.h"
#include "tests/quant/eval_fixtures.h"
#include "tests/testing/tiny_models.h"

namespace psaq::quant {
namespace {

using testing::CodedConfig;
using testing::CodedDataset;
using testing::CodedForward;
using testing::LocalCommunicator;

// Codes (the predicted class) and labels of 12 images; see eval_fixtures.h for the rule.
//   index:  0  1  2  3  4  5  6  7  8  9 10 11
//   code:   3  3  3  3  0  9  9  5  2  7  6  1
//   label:  3  4  7  8  0  0  5  5  1  7  9  2
//   top-1:  x           x        x     x            -> 4
//   top-5:  x  x  x     x  x     x     x  x  x      -> 9  ((label - code) mod 10 < 5)
const std::vector<int> kCodes = {3, 3, 3, 3, 0, 9, 9, 5, 2, 7, 6, 1};
const std::vector<int> kLabels = {3, 4, 7, 8, 0, 0, 5, 5, 1, 7, 9, 2};

EvalResult EvaluateCoded(const model::ImageDataset& data, const EvalOptions& options) {
  LocalCommunicator comm;
  return Evaluate(comm, &CodedForward, data, CodedConfig(), options);
}

TEST(CountHitsTest, CountsTopOneAndTopKOnHandMadeLogits) {
  const at::Tensor logits = at::tensor({0.1f, 0.9f, 0.5f, 0.3f,   // order 1 2 3 0
                                        0.7f, 0.2f, 0.0f, 0.4f,   // order 0 3 1 2
                                        0.0f, 0.1f, 0.2f, 0.3f})  // order 3 2 1 0
                                .view({3, 4});
  const at::Tensor labels = at::tensor({1, 1, 0}, at::kLong);
  EXPECT_EQ(CountHits(logits, labels, 1), (std::pair<int64_t, int64_t>{1, 1}));
  EXPECT_EQ(CountHits(logits, labels, 2), (std::pair<int64_t, int64_t>{1, 1}));
  EXPECT_EQ(CountHits(logits, labels, 3), (std::pair<int64_t, int64_t>{1, 2}));
  // k is clipped to the number of classes: top-5 of 4 classes always hits.
  EXPECT_EQ(CountHits(logits, labels, 5), (std::pair<int64_t, int64_t>{1, 3}));
  EXPECT_THROW(CountHits(logits, at::tensor({1, 4, 0}, at::kLong), 5), c10::Error);
  EXPECT_THROW(CountHits(logits, at::tensor({1, 1}, at::kLong), 5), c10::Error);
}

TEST(EvaluateTest, CountsTopOneAndTopFiveOfAKnownDataset) {
  const CodedDataset data(kCodes, kLabels);
  EvalOptions options;
  options.batch_size = 5;
  options.gather_predictions = true;
  const EvalResult r = EvaluateCoded(data, options);
  EXPECT_EQ(r.images, 12);
  EXPECT_EQ(r.top1_correct, 4);
  EXPECT_EQ(r.top5_correct, 9);
  EXPECT_EQ(r.skipped, 0);
  EXPECT_EQ(r.topk, 5);
  EXPECT_DOUBLE_EQ(r.top1(), 4.0 / 12);
  EXPECT_DOUBLE_EQ(r.top5(), 9.0 / 12);
  EXPECT_EQ(r.predictions, std::vector<int64_t>(kCodes.begin(), kCodes.end()));
}

TEST(EvaluateTest, ResultsDoNotDependOnTheBatchSize) {
  const CodedDataset data(kCodes, kLabels);
  for (int64_t batch : {1, 2, 7, 12, 64}) {
    EvalOptions options;
    options.batch_size = batch;
    const EvalResult r = EvaluateCoded(data, options);
    EXPECT_EQ(r.top1_correct, 4) << "batch " << batch;
    EXPECT_EQ(r.top5_correct, 9) << "batch " << batch;
    EXPECT_EQ(r.images, 12) << "batch " << batch;
  }
}

TEST(EvaluateTest, MaxImagesTakesTheFirstImages) {
  const CodedDataset data(kCodes, kLabels);
  EvalOptions options;
  options.batch_size = 3;
  options.max_images = 7;  // indices 0..6: top-1 {0, 4}, top-5 {0, 1, 2, 4, 5}
  options.gather_predictions = true;
  const EvalResult r = EvaluateCoded(data, options);
  EXPECT_EQ(r.images, 7);
  EXPECT_EQ(r.top1_correct, 2);
  EXPECT_EQ(r.top5_correct, 5);
  EXPECT_EQ(r.predictions, (std::vector<int64_t>{3, 3, 3, 3, 0, 9, 9}));
  options.max_images = 100;  // more than the dataset: all of it
  EXPECT_EQ(EvaluateCoded(data, options).images, 12);
}

TEST(EvaluateTest, SkipsOrFailsOnImagesThatDoNotDecode) {
  // Index 0 (a top-1 hit) and 8 (a miss) are broken.
  const CodedDataset data(kCodes, kLabels, 10, {0, 8});
  EvalOptions options;
  options.batch_size = 4;
  options.on_bad_image = BadImagePolicy::kSkip;
  options.gather_predictions = true;
  const EvalResult r = EvaluateCoded(data, options);
  EXPECT_EQ(r.images, 10);
  EXPECT_EQ(r.skipped, 2);
  EXPECT_EQ(r.top1_correct, 3);
  EXPECT_EQ(r.top5_correct, 8);
  EXPECT_EQ(r.predictions[0], -1);
  EXPECT_EQ(r.predictions[8], -1);
  EXPECT_EQ(r.predictions[1], 3);

  options.on_bad_image = BadImagePolicy::kFail;
  try {
    EvaluateCoded(data, options);
    FAIL() << "expected a throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("coded[0]: corrupt"), std::string::npos) << e.what();
  }
}

TEST(EvaluateTest, RefusesBadArgumentsAndShapes) {
  const CodedDataset data(kCodes, kLabels);
  EvalOptions options;
  options.batch_size = 0;
  EXPECT_THROW(EvaluateCoded(data, options), c10::Error);
  options.batch_size = 4;
  options.max_images = -1;
  EXPECT_THROW(EvaluateCoded(data, options), c10::Error);
  // A dataset with more classes than the model outputs.
  const CodedDataset wide(kCodes, kLabels, 11);
  EXPECT_THROW(EvaluateCoded(wide, EvalOptions{}), c10::Error);
  // A forward with the wrong number of classes.
  LocalCommunicator comm;
  auto narrow = [](const at::Tensor& x) { return CodedForward(x).narrow(1, 0, 9); };
  EXPECT_THROW(Evaluate(comm, narrow, data, CodedConfig(), EvalOptions{}), c10::Error);
}

TEST(EvaluateTest, EmptySelectionGivesZeroCounts) {
  const CodedDataset data({}, {});
  const EvalResult r = EvaluateCoded(data, EvalOptions{});
  EXPECT_EQ(r.images, 0);
  EXPECT_EQ(r.top1(), 0.0);
}

TEST(BadImagePolicyTest, ParsesAndNames) {
  EXPECT_EQ(ParseBadImagePolicy("skip"), BadImagePolicy::kSkip);
  EXPECT_EQ(ParseBadImagePolicy("fail"), BadImagePolicy::kFail);
  EXPECT_EQ(BadImagePolicyName(BadImagePolicy::kSkip), "skip");
  EXPECT_THROW(ParseBadImagePolicy("ignore"), std::invalid_argument);
}

// A grey 4x4 PNG of constant value `code` at `relative`.
void WriteCodedPng(const psaq::testing::TempDir& dir, const std::string& relative, int code) {
  dir.Write(relative, "");  // creates the parent directories
  const at::Tensor img = at::full({4, 4, 1}, code, at::kByte);
  ASSERT_NE(stbi_write_png(dir.Sub(relative).c_str(), 4, 4, 1, img.data_ptr<uint8_t>(), 4), 0);
}

TEST(EvaluateTest, ImageFolderWithACorruptFileSkipsItOrFailsNamingIt) {
  psaq::testing::TempDir dir;
  WriteCodedPng(dir, "a/0.png", 0);  // class 0, predicted 0: top-1 hit
  dir.Write("a/1_broken.png", "not a png");
  WriteCodedPng(dir, "b/0.png", 1);  // class 1, predicted 1: top-1 hit
  WriteCodedPng(dir, "b/1.png", 8);  // class 1, predicted 8: (1 - 8) mod 10 = 3, top-5 hit
  WriteCodedPng(dir, "b/2.png", 3);  // class 1, predicted 3: (1 - 3) mod 10 = 8, miss
  const model::ImageFolder folder(dir.path().string());
  ASSERT_EQ(folder.size(), 5);

  EvalOptions options;
  options.batch_size = 2;
  options.on_bad_image = BadImagePolicy::kSkip;
  const EvalResult r = EvaluateCoded(folder, options);
  EXPECT_EQ(r.images, 4);
  EXPECT_EQ(r.skipped, 1);
  EXPECT_EQ(r.top1_correct, 2);
  EXPECT_EQ(r.top5_correct, 3);

  options.on_bad_image = BadImagePolicy::kFail;
  try {
    EvaluateCoded(folder, options);
    FAIL() << "expected a throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(dir.Sub("a/1_broken.png")), std::string::npos) << e.what();
  }
}

TEST(LayerErrorsTest, PerLayerErrorOfTheFirstBatchesWorstFirst) {
  QuantizedModel q(testing::TinyModel("vit"), testing::Bits(4, 8));
  Calibrate(q, testing::Batches(testing::TinyConfig("vit"), 1, 8, 5), nullptr);
  const testing::RandomDataset data(10, {1});
  EvalOptions options;
  options.batch_size = 3;
  options.on_bad_image = BadImagePolicy::kSkip;
  // The first 2 batches = images 0..5, of which 1 is broken.
  const std::vector<TapError> errors = LayerErrors(q, data, options, 2);
  const model::Batch batch = model::MakeBatch(data, {0, 2, 3, 4, 5}, q.model().config());
  const std::vector<TapError> reference = PerLayerError(q, batch.images);
  ASSERT_EQ(errors.size(), reference.size());
  EXPECT_EQ(errors.size(), q.activation_taps().size() + 1);
  for (size_t i = 1; i < errors.size(); ++i) {
    EXPECT_LE(errors[i - 1].sqnr_db, errors[i].sqnr_db) << i;
  }
  for (const TapError& r : reference) {
    const auto it = std::find_if(errors.begin(), errors.end(),
                                 [&](const TapError& e) { return e.name == r.name; });
    ASSERT_NE(it, errors.end()) << r.name;
    EXPECT_EQ(it->sqnr_db, r.sqnr_db) << r.name;  // same batch, same computation
    EXPECT_EQ(it->cosine, r.cosine) << r.name;
  }

  // The table: the 3 worst rows, the output row wherever it ranks, and a count of the others.
  const std::string table = FormatLayerErrors(errors, 3);
  EXPECT_NE(table.find(errors[0].name), std::string::npos) << table;
  EXPECT_NE(table.find("output"), std::string::npos) << table;
  const size_t output_rank =
      static_cast<size_t>(std::find_if(errors.begin(), errors.end(),
                                       [](const TapError& e) { return e.name == "output"; }) -
                          errors.begin());
  const size_t shown = 3 + (output_rank >= 3 ? 1 : 0);
  EXPECT_NE(table.find("(" + std::to_string(errors.size() - shown) + " better layers not shown)"),
            std::string::npos)
      << table;

  options.on_bad_image = BadImagePolicy::kFail;
  EXPECT_THROW(LayerErrors(q, data, options, 2), std::runtime_error);
  EXPECT_THROW(LayerErrors(q, data, options, 0), c10::Error);
}

}  // namespace
}  // namespace psaq::quant
