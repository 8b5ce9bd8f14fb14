#include "quant/evaluate_detector.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "model/data/coco_eval_json.h"
#include "model/data/coco_mask.h"
#include "model/data/scenes.h"
#include "model/detect/load_detector.h"
#include "tests/model/detect/tiny_detector.h"
#include "tests/testing/single_rank_communicator.h"
#include "tests/testing/temp_dir.h"

namespace psaq::quant {
namespace {

// A make-scenes val set of `n` 160x160 images in `dir`.
data::ScenesSummary Scenes(const testing::TempDir& dir, int64_t n) {
  data::ScenesOptions o;
  o.split = "val";
  o.num_images = n;
  o.seed = 1;
  o.canvas_size = 160;
  return data::MakeScenes(o, dir.Sub("scenes"));
}

// The tiny test detector with 10 classes, keeping detections above 0.01 (random weights score
// about 1/11 per class).
detect::DetectorConfig TenClassConfig() {
  detect::DetectorConfig c = detect::testing::TinyDetectorConfig();
  c.num_classes = 10;
  c.score_thr = 0.01;
  c.max_per_img = 20;
  return c;
}

TEST(PreprocessDetectionBatchTest, NormalisesThenPadsWithZerosToTheSizeDivisor) {
  const detect::DetectorConfig config = detect::testing::TinyDetectorConfig();
  ASSERT_EQ(config.size_divisor(), 32);
  at::manual_seed(3);
  const at::Tensor a = at::randint(0, 256, {5, 40, 3}, at::kByte);
  const at::Tensor b = at::randint(0, 256, {9, 3, 3}, at::kByte);
  const at::Tensor batch = PreprocessDetectionBatch({a, b}, config);
  ASSERT_EQ(batch.sizes(), (std::vector<int64_t>{2, 3, 32, 64}));
  for (int c = 0; c < 3; ++c) {
    const at::Tensor want = (a.select(2, c).to(at::kFloat) - static_cast<float>(config.mean[c])) /
                            static_cast<float>(config.std[c]);
    EXPECT_TRUE(at::equal(batch[0][c].slice(0, 0, 5).slice(1, 0, 40), want)) << c;
  }
  EXPECT_EQ(batch[0].slice(1, 5).abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(batch[0].slice(2, 40).abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(batch[1].slice(1, 9).abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(batch[1].slice(2, 3).abs().sum().item<float>(), 0.0f);
}

TEST(ToCocoDetectionsTest, ClipsToTheImageCropsMasksAndMapsLabelsToCategoryIds) {
  detect::Detections d;
  d.boxes = at::tensor({-3.0f, 2.0f, 50.0f, 20.5f, 1.1f, 1.5f, 5.3f, 4.0f}).view({2, 4});
  d.scores = at::tensor({0.75f, 0.25f});
  d.labels = at::tensor(std::vector<int64_t>{1, 0});
  d.masks = at::zeros({2, 32, 64}, at::kBool);
  d.masks[0].slice(0, 2, 32).slice(1, 0, 64).fill_(true);  // passes the 10 x 40 image
  d.masks[1].slice(0, 1, 4).slice(1, 1, 5).fill_(true);
  const std::vector<data::CocoCategory> categories = {{5, "a"}, {9, "b"}};
  const auto out = ToCocoDetections(d, 42, 10, 40, categories);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].image_id, 42);
  EXPECT_EQ(out[0].category_id, 9);
  EXPECT_EQ(out[1].category_id, 5);
  EXPECT_EQ(out[0].bbox, (std::array<double, 4>{0, 2, 40, 8}));
  // Width and height in double from the float32 corners, as mmdet's xyxy2xywh (after tolist()):
  // not the float32 difference.
  const double x1 = 1.1f, x2 = 5.3f;
  ASSERT_NE(x2 - x1, static_cast<double>(5.3f - 1.1f));
  EXPECT_EQ(out[1].bbox, (std::array<double, 4>{x1, 1.5, x2 - x1, 2.5}));
  EXPECT_EQ(out[0].score, 0.75);
  EXPECT_FALSE(out[0].area.has_value());  // the evaluator takes the box's, as loadRes
  ASSERT_TRUE(out[0].mask.has_value());
  EXPECT_EQ(out[0].mask->height, 10);
  EXPECT_EQ(out[0].mask->width, 40);
  EXPECT_EQ(data::Area(*out[0].mask), 8 * 40);
  EXPECT_TRUE(at::equal(data::Decode(*out[1].mask), d.masks[1].slice(0, 0, 10).slice(1, 0, 40)));

  d.labels = at::tensor(std::vector<int64_t>{2, 0});
  EXPECT_THROW(ToCocoDetections(d, 42, 10, 40, categories), c10::Error);
}

TEST(EvaluateDetectorTest, GroundTruthAndResultsFileReadBackAsPycocotoolsWould) {
  testing::TempDir dir;
  const data::ScenesSummary scenes = Scenes(dir, 3);
  const data::CocoDataset dataset(scenes.json_path, "");
  at::manual_seed(7);
  const detect::DetectorPtr detector = detect::CreateDetector(TenClassConfig());
  testing::SingleRankCommunicator comm;
  DetectorEvalOptions options;
  options.batch_size = 2;
  options.gather_detections = true;
  const DetectorEvalResult r = EvaluateDetector(comm, *detector, dataset, options);
  EXPECT_EQ(r.images, 3);
  EXPECT_EQ(r.skipped, 0);
  ASSERT_GT(r.detections, 0);
  ASSERT_EQ(static_cast<int64_t>(r.detections_all.size()), r.detections);
  EXPECT_GT(r.images_per_second(), 0);
  EXPECT_GT(r.peak_rss_mb, 0);

  // The files as pycocotools reads them (coco_eval_json.h mirrors COCO() and loadRes) give the
  // numbers the in-memory path gave.
  const std::string results = dir.Write("results.json", CocoResultsJson(r.detections_all));
  const data::CocoGroundTruth gt = data::LoadCocoGroundTruth(scenes.json_path);
  const std::vector<data::CocoDetection> read = data::LoadCocoDetections(results, gt);
  ASSERT_EQ(read.size(), r.detections_all.size());
  EXPECT_EQ(read[0].bbox, r.detections_all[0].bbox);
  EXPECT_EQ(read[0].score, r.detections_all[0].score);
  EXPECT_EQ(read[0].mask->counts, r.detections_all[0].mask->counts);
  EXPECT_EQ(data::EvaluateCoco(gt, read, data::CocoIouType::kBbox).stats, r.box.stats);
  EXPECT_EQ(data::EvaluateCoco(gt, read, data::CocoIouType::kSegm).stats, r.segm.stats);

  // The dataset's ground truth equals the file's; `n` and `excluded` select images.
  const data::CocoGroundTruth mine = CocoGroundTruthOf(dataset);
  ASSERT_EQ(mine.images.size(), gt.images.size());
  EXPECT_EQ(mine.category_ids, gt.category_ids);
  for (size_t i = 0; i < gt.images.size(); ++i) {
    ASSERT_EQ(mine.images[i].objects.size(), gt.images[i].objects.size());
    for (size_t k = 0; k < gt.images[i].objects.size(); ++k) {
      const data::CocoGtObject& a = mine.images[i].objects[k];
      const data::CocoGtObject& b = gt.images[i].objects[k];
      EXPECT_EQ(a.id, b.id);
      EXPECT_EQ(a.bbox, b.bbox);
      EXPECT_EQ(a.area, b.area);
      EXPECT_EQ(a.mask->counts, b.mask->counts);
    }
  }
  const data::CocoGroundTruth two = CocoGroundTruthOf(dataset, 2, {dataset.image(0).id});
  ASSERT_EQ(two.images.size(), 1u);
  EXPECT_EQ(two.images[0].id, dataset.image(1).id);

  // max_images: the first images only, their ground truth only.
  options.max_images = 2;
  const DetectorEvalResult first_two = EvaluateDetector(comm, *detector, dataset, options);
  EXPECT_EQ(first_two.images, 2);
  for (const data::CocoDetection& d : first_two.detections_all) {
    EXPECT_NE(d.image_id, dataset.image(2).id);
  }
  EXPECT_EQ(first_two.box.stats,
            data::EvaluateCoco(CocoGroundTruthOf(dataset, 2), first_two.detections_all,
                               data::CocoIouType::kBbox)
                .stats);
}

TEST(EvaluateDetectorTest, RefusesADetectorThatDoesNotFitTheDataset) {
  testing::TempDir dir;
  const data::ScenesSummary scenes = Scenes(dir, 1);
  const data::CocoDataset dataset(scenes.json_path, "");
  detect::DetectorConfig config = TenClassConfig();
  config.num_classes = 3;
  try {
    CheckDetectorFitsDataset(config, dataset, 1);
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(scenes.json_path + ": has 10 categories but the detector"),
              std::string::npos)
        << e.what();
  }
  config = TenClassConfig();
  config.in_chans = 1;
  config.mean = {0};
  config.std = {1};
  try {
    CheckDetectorFitsDataset(config, dataset, 1);
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("images are RGB but the detector 'tiny_mask_rcnn' takes 1 "
                                         "channels"),
              std::string::npos)
        << e.what();
  }
  at::manual_seed(7);
  const detect::DetectorPtr detector = detect::CreateDetector(TenClassConfig());
  testing::SingleRankCommunicator comm;
  DetectorEvalOptions options;
  options.batch_size = 0;
  EXPECT_THROW(EvaluateDetector(comm, *detector, dataset, options), c10::Error);
}

}  // namespace
}  // namespace psaq::quant
