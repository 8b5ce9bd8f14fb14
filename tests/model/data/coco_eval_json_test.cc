// The evaluator's COCO file loaders: what they read, and one error line per kind of bad input.
#include "model/data/coco_eval_json.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "model/data/coco_mask.h"
#include "tests/testing/temp_dir.h"

namespace psaq::data {
namespace {

constexpr const char* kImages = R"("images": [{"id": 4, "height": 20, "width": 30}, {"id": 2}])";
constexpr const char* kCategories = R"("categories": [{"id": 3}, {"id": 1}])";

std::string GtWith(const std::string& annotations) {
  return std::string("{") + kImages + ", " + kCategories + ", \"annotations\": [" + annotations +
         "]}";
}

constexpr const char* kGoodAnnotation =
    R"({"id": 9, "image_id": 2, "category_id": 3, "bbox": [1, 2, 3.5, 4], "area": 7.25})";

// Expects LoadCocoGroundTruth to throw one line holding `part` and the path.
void ExpectGtError(const std::string& json, const std::string& part) {
  testing::TempDir dir;
  const std::string path = dir.Write("gt.json", json);
  try {
    LoadCocoGroundTruth(path);
    ADD_FAILURE() << "no error; expected '" << part << "'";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(part), std::string::npos) << what;
    EXPECT_EQ(what.rfind(path, 0), 0u) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

TEST(CocoEvalJsonTest, ReadsGroundTruth) {
  testing::TempDir dir;
  const std::string path = dir.Write(
      "gt.json", GtWith(std::string(kGoodAnnotation) +
                        R"(, {"id": 10, "image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1],
                              "area": 1, "iscrowd": 1})"));
  const CocoGroundTruth gt = LoadCocoGroundTruth(path);
  ASSERT_EQ(gt.images.size(), 2u);
  EXPECT_EQ(gt.images[0].id, 4);
  EXPECT_EQ(gt.images[0].height, 20);
  EXPECT_EQ(gt.images[0].width, 30);
  EXPECT_TRUE(gt.images[0].objects.empty());
  ASSERT_EQ(gt.images[1].objects.size(), 2u);
  const CocoGtObject& g = gt.images[1].objects[0];
  EXPECT_EQ(g.id, 9);
  EXPECT_EQ(g.category_id, 3);
  EXPECT_EQ(g.bbox, (std::array<double, 4>{1, 2, 3.5, 4}));
  EXPECT_EQ(g.area, 7.25);
  EXPECT_FALSE(g.iscrowd);
  EXPECT_TRUE(gt.images[1].objects[1].iscrowd);
  EXPECT_EQ(gt.category_ids, (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(CocoImageIds(gt), (std::vector<int64_t>{2, 4}));
}

TEST(CocoEvalJsonTest, GroundTruthErrorsNameTheEntry) {
  ExpectGtError("{", "not valid JSON");
  ExpectGtError("[]", "not a COCO instances object");
  ExpectGtError(std::string("{") + kCategories + R"(, "annotations": []})",
                "missing 'images' array");
  ExpectGtError(std::string("{") + kImages + R"(, "annotations": []})",
                "missing 'categories' array");
  ExpectGtError(std::string("{") + kImages + ", " + kCategories + "}",
                "missing 'annotations' array");
  ExpectGtError(R"({"images": [{"id": 1}, {"id": 1}], "categories": [], "annotations": []})",
                "images[1]: duplicate image id 1");
  ExpectGtError(R"({"images": [{"id": "a"}], "categories": [], "annotations": []})",
                "images[0]: 'id' must be an integer");
  ExpectGtError(R"({"images": [3], "categories": [], "annotations": []})",
                "images[0]: not an object");
  ExpectGtError(R"({"images": [], "categories": [{"id": 2}, {"id": 2}], "annotations": []})",
                "categories[1]: duplicate category id 2");
  ExpectGtError(R"({"images": [], "categories": [{}], "annotations": []})",
                "categories[0]: missing 'id'");
  ExpectGtError(GtWith(R"({"id": 1, "image_id": 2, "category_id": 3, "area": 1})"),
                "annotations[0]: missing 'bbox'");
  ExpectGtError(GtWith(R"({"id": 1, "image_id": 2, "category_id": 3, "bbox": [1, 2, 3],
                           "area": 1})"),
                "annotations[0]: 'bbox' must be 4 numbers");
  ExpectGtError(GtWith(R"({"id": 1, "image_id": 2, "category_id": 3, "bbox": [1, 2, 3, "x"],
                           "area": 1})"),
                "annotations[0]: 'bbox' must be 4 numbers");
  ExpectGtError(GtWith(R"({"id": 1, "image_id": 2, "category_id": 3, "bbox": [1, 2, -3, 4],
                           "area": 1})"),
                "annotations[0]: 'bbox' has a negative width or height");
  ExpectGtError(GtWith(R"({"id": 1, "image_id": 2, "category_id": 3, "bbox": [1, 2, 3, 4]})"),
                "annotations[0]: missing 'area'");
  ExpectGtError(GtWith(R"({"id": 1, "image_id": 2, "category_id": 3, "bbox": [1, 2, 3, 4],
                           "area": "big"})"),
                "annotations[0]: 'area' must be a number");
  ExpectGtError(GtWith(R"({"id": 1, "image_id": 2, "category_id": 3, "bbox": [1, 2, 3, 4],
                           "area": 1, "iscrowd": 2})"),
                "annotations[0]: 'iscrowd' must be 0 or 1");
  ExpectGtError(GtWith(std::string(kGoodAnnotation) +
                       R"(, {"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 2, 3, 4],
                             "area": 1})"),
                "annotations[1]: unknown image_id 7");
  ExpectGtError(GtWith(R"({"id": 1, "image_id": 2, "category_id": 5, "bbox": [1, 2, 3, 4],
                           "area": 1})"),
                "annotations[0]: unknown category_id 5");
  testing::TempDir dir;
  EXPECT_THROW(LoadCocoGroundTruth(dir / "missing.json"), std::runtime_error);
}

TEST(CocoEvalJsonTest, ReadsDetectionsAndNamesBadEntries) {
  testing::TempDir dir;
  const CocoGroundTruth gt = LoadCocoGroundTruth(dir.Write("gt.json", GtWith(kGoodAnnotation)));
  const std::string path =
      dir.Write("dt.json", R"([{"image_id": 4, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.5,
                      "id": 99}, {"image_id": 2, "category_id": 8, "bbox": [0, 0, 1, 2],
                      "score": 1}])");
  const std::vector<CocoDetection> dets = LoadCocoDetections(path, gt);
  ASSERT_EQ(dets.size(), 2u);
  EXPECT_EQ(dets[0].image_id, 4);
  EXPECT_EQ(dets[0].category_id, 3);
  EXPECT_EQ(dets[0].bbox, (std::array<double, 4>{1, 2, 3, 4}));
  EXPECT_EQ(dets[0].score, 0.5);
  EXPECT_FALSE(dets[0].area.has_value());  // the box's area
  EXPECT_EQ(dets[1].category_id, 8);       // kept; the evaluation leaves it out
  EXPECT_TRUE(LoadCocoDetections(dir.Write("empty.json", "[]"), gt).empty());

  const auto expect_error = [&](const std::string& json, const std::string& part) {
    const std::string p = dir.Write("bad.json", json);
    try {
      LoadCocoDetections(p, gt);
      ADD_FAILURE() << "no error; expected '" << part << "'";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(p + ": " + part), std::string::npos) << e.what();
    }
  };
  expect_error("{}", "a COCO results file is a JSON array");
  expect_error("[1", "not valid JSON");
  expect_error("[7]", "[0]: not an object");
  expect_error(R"([{"image_id": 5, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.5}])",
               "[0]: image_id 5 is not an image of the ground truth");
  expect_error(R"([{"image_id": 4, "bbox": [1, 2, 3, 4], "score": 0.5}])",
               "[0]: missing 'category_id'");
  expect_error(R"([{"image_id": 4, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.5},
                   {"image_id": 4, "category_id": 3, "score": 0.5}])",
               "[1]: missing 'bbox'");
  // Without a box in the first entry the results are masks.
  expect_error(R"([{"image_id": 4, "category_id": 3, "score": 0.5}])",
               "[0]: missing 'segmentation'");
  expect_error(R"([{"image_id": 4, "category_id": 3, "bbox": [1, 2, 3, 4]}])",
               "[0]: missing 'score'");
  expect_error(R"([{"image_id": 4, "category_id": 3, "bbox": [1, 2, 3, 4], "score": "hi"}])",
               "[0]: 'score' must be a number");
  expect_error(R"([{"image_id": 4.5, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 1}])",
               "[0]: 'image_id' must be an integer");
}

TEST(CocoEvalJsonTest, ReadsSegmentationsAsPycocotoolsDoes) {
  testing::TempDir dir;
  const Rle rle = FromPolygons({{2, 2, 9, 3, 7, 12}}, 20, 30);  // image 4 is 20 x 30
  const std::string compressed = ToString(rle);
  const std::string path = dir.Write(
      "gt.json",
      GtWith(R"({"id": 1, "image_id": 4, "category_id": 3, "bbox": [1, 2, 3, 4], "area": 5,
                 "segmentation": [[2, 2, 9, 3, 7, 12]]},
                {"id": 2, "image_id": 4, "category_id": 3, "bbox": [1, 2, 3, 4], "area": 5,
                 "segmentation": {"size": [20, 30], "counts": ")" +
             compressed + R"("}},
                {"id": 3, "image_id": 2, "category_id": 3, "bbox": [1, 2, 3, 4], "area": 5,
                 "iscrowd": 1, "segmentation": {"size": [2, 3], "counts": [1, 4, 1]}},
                {"id": 4, "image_id": 2, "category_id": 3, "bbox": [1, 2, 3, 4], "area": 5})"));
  const CocoGroundTruth gt = LoadCocoGroundTruth(path);
  const auto& objects4 = gt.images[0].objects;
  ASSERT_EQ(objects4.size(), 2u);
  ASSERT_TRUE(objects4[0].mask.has_value());
  EXPECT_EQ(objects4[0].mask->counts, rle.counts);
  EXPECT_EQ(objects4[0].mask->height, 20);
  EXPECT_EQ(objects4[0].mask->width, 30);
  ASSERT_TRUE(objects4[1].mask.has_value());
  EXPECT_EQ(objects4[1].mask->counts, rle.counts);
  const auto& objects2 = gt.images[1].objects;
  ASSERT_TRUE(objects2[0].mask.has_value());
  EXPECT_EQ(objects2[0].mask->counts, (std::vector<uint32_t>{1, 4, 1}));
  EXPECT_EQ(objects2[0].mask->height, 2);
  EXPECT_FALSE(objects2[1].mask.has_value());

  // Results with boxes: the box's area, the mask kept. Without: the mask's area and box.
  const std::string with_boxes = dir.Write(
      "dt1.json", R"([{"image_id": 4, "category_id": 3, "bbox": [0, 0, 4, 5], "score": 0.5,
                       "segmentation": {"size": [20, 30], "counts": ")" +
                      compressed + R"("}},
                      {"image_id": 4, "category_id": 3, "bbox": [0, 0, 4, 5], "score": 0.4}])");
  const auto a = LoadCocoDetections(with_boxes, gt);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_FALSE(a[0].area.has_value());
  ASSERT_TRUE(a[0].mask.has_value());
  EXPECT_EQ(a[0].mask->counts, rle.counts);
  EXPECT_FALSE(a[1].mask.has_value());
  const std::string masks_only =
      dir.Write("dt2.json", R"([{"image_id": 4, "category_id": 3, "score": 0.5,
                       "segmentation": {"size": [20, 30], "counts": ")" +
                                compressed + R"("}},
                      {"image_id": 4, "category_id": 3, "score": 0.5, "bbox": [1, 1, 1, 1],
                       "segmentation": [[2, 2, 9, 3, 7, 12]]}])");
  const auto b = LoadCocoDetections(masks_only, gt);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].area, static_cast<double>(Area(rle)));
  EXPECT_EQ(b[0].bbox, ToBbox(rle));
  EXPECT_EQ(b[1].area, static_cast<double>(Area(rle)));
  EXPECT_EQ(b[1].bbox, (std::array<double, 4>{1, 1, 1, 1}));
}

TEST(CocoEvalJsonTest, SegmentationErrorsNameTheEntry) {
  const auto with = [](const std::string& segmentation, int image = 4) {
    return GtWith(R"({"id": 1, "image_id": )" + std::to_string(image) +
                  R"(, "category_id": 3, "bbox": [1, 2, 3, 4], "area": 5, "segmentation": )" +
                  segmentation + "}");
  };
  ExpectGtError(with("[]"), "annotations[0]: 'segmentation' has no polygon");
  ExpectGtError(with("[[1, 1, 5, 1, 5, 5]]", 2),
                "annotations[0]: polygon 'segmentation' on an image without height and width");
  ExpectGtError(with("[3]"), "annotations[0]: 'segmentation' polygons must be arrays");
  ExpectGtError(with(R"([[1, "a", 5, 1, 5, 5]])"),
                "annotations[0]: 'segmentation' polygons must hold numbers");
  ExpectGtError(with("[[1, 1, 5, 1]]"), "annotations[0]: ");  // the codec: too few points
  ExpectGtError(with("7"), "annotations[0]: 'segmentation' must be polygons or an RLE object");
  ExpectGtError(with(R"({"counts": [6]})"), "annotations[0]: missing 'size'");
  ExpectGtError(with(R"({"size": [2], "counts": [6]})"),
                "annotations[0]: 'segmentation' 'size' must be [height, width]");
  ExpectGtError(with(R"({"size": [2, 3]})"), "annotations[0]: missing 'counts'");
  ExpectGtError(with(R"({"size": [2, 3], "counts": 6})"),
                "annotations[0]: 'segmentation' 'counts' must be a string or an array");
  ExpectGtError(with(R"({"size": [2, 3], "counts": [1, -5]})"),
                "annotations[0]: 'segmentation' 'counts' must be run lengths in [0, 2^32)");
  ExpectGtError(with(R"({"size": [2, 3], "counts": [1, 4]})"),
                "annotations[0]: 'segmentation': counts sum to 5");
  ExpectGtError(with(R"({"size": [2, 3], "counts": "\u0001"})"), "annotations[0]: ");
}

}  // namespace
}  // namespace psaq::data
