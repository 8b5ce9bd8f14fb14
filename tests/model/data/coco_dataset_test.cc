// The COCO reader: samples, labels, masks in every segmentation form, against pycocotools
// (tests/model/data/coco_dataset_oracle.py), and one test per rejected input, failing and skipped.
#include "model/data/coco_dataset.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <stb/stb_image_write.h>  // implementation compiled into libstb.so

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/data/dataset_by_name.h"
#include "tests/testing/oracle.h"
#include "tests/testing/temp_dir.h"

namespace psaq::data {
namespace {

using nlohmann::json;

void WritePng(const std::string& path, int64_t h, int64_t w, int channels) {
  std::vector<unsigned char> pixels(static_cast<size_t>(h * w * channels));
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<unsigned char>(i * 7);
  ASSERT_NE(stbi_write_png(path.c_str(), static_cast<int>(w), static_cast<int>(h), channels,
                           pixels.data(), static_cast<int>(w * channels)),
            0);
}

// Image 1 (20x16 RGB) and image 2 (12x10 grey); categories 7, 3, 12 (labels 1, 0, 2); an
// annotation of each segmentation form, one crowd.
at::Tensor RleMask() {
  at::Tensor m = at::zeros({10, 12}, at::kBool);
  m.slice(0, 2, 7).slice(1, 3, 9).fill_(true);
  return m;
}

json GoodJson() {
  at::Tensor crowd = at::zeros({16, 20}, at::kBool);
  crowd.slice(0, 0, 5).fill_(true);
  const Rle crowd_rle = Encode(crowd);
  const Rle rle = Encode(RleMask());
  return {{"images",
           {{{"id", 1}, {"file_name", "a.png"}, {"width", 20}, {"height", 16}},
            {{"id", 2}, {"file_name", "sub/b.png"}, {"width", 12}, {"height", 10}}}},
          {"categories",
           {{{"id", 7}, {"name", "seven"}},
            {{"id", 3}, {"name", "three"}},
            {{"id", 12}, {"name", "twelve"}}}},
          {"annotations",
           {{{"id", 17},
             {"image_id", 1},
             {"category_id", 7},
             {"bbox", {2.5, 3, 10, 6}},
             {"area", 50},
             {"iscrowd", 0},
             {"segmentation", {{2.5, 3, 12.5, 3, 12.5, 9, 2.5, 9}}}},
            {{"id", 18},
             {"image_id", 2},
             {"category_id", 12},
             {"bbox", {3, 2, 6, 5}},
             {"area", 30},
             {"iscrowd", 0},
             {"segmentation", {{"counts", ToString(rle)}, {"size", {10, 12}}}}},
            {{"id", 19},
             {"image_id", 1},
             {"category_id", 3},
             {"bbox", {0, 0, 20, 5}},
             {"area", 100},
             {"iscrowd", 1},
             {"segmentation", {{"counts", crowd_rle.counts}, {"size", {16, 20}}}}},
            {{"id", 20},
             {"image_id", 1},
             {"category_id", 12},
             {"bbox", {14, 8, 5.5, 7.5}},
             {"area", 20},
             {"segmentation", {{14, 8, 19.5, 8, 16, 15.5}, {1, 12, 4, 12, 2, 15}}}}}}};
}

class CocoDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WritePng(dir_ / "a.png", 16, 20, 3);
    std::filesystem::create_directories(dir_ / "sub");
    WritePng(dir_ / "sub/b.png", 10, 12, 1);
  }
  std::string WriteJson(const json& j) { return dir_.Write("instances_val.json", j.dump()); }
  std::string WriteJson(const std::string& text) { return dir_.Write("instances_val.json", text); }
  testing::TempDir dir_;
};

TEST_F(CocoDatasetTest, ReadsImagesBoxesLabelsAndMasks) {
  const CocoDataset ds(WriteJson(GoodJson()), "");
  ASSERT_EQ(ds.size(), 2);
  ASSERT_EQ(ds.num_classes(), 3);
  EXPECT_EQ(ds.categories()[0].id, 3);
  EXPECT_EQ(ds.categories()[1].name, "seven");
  EXPECT_EQ(ds.categories()[2].id, 12);
  EXPECT_EQ(ds.annotations().size(), 4u);
  EXPECT_EQ(ds.annotations_of(0), (std::vector<int64_t>{0, 2, 3}));
  EXPECT_EQ(ds.IndexOfImageId(2), 1);
  EXPECT_EQ(ds.IndexOfImageId(5), -1);

  CocoSample s;
  std::string error;
  ASSERT_TRUE(ds.Decode(0, &s, &error)) << error;
  EXPECT_EQ(s.image.sizes(), (at::IntArrayRef{16, 20, 3}));
  EXPECT_EQ(s.image_id, 1);
  EXPECT_EQ(s.annotation_ids, (std::vector<int64_t>{17, 19, 20}));
  EXPECT_TRUE(at::equal(s.labels, at::tensor({1, 0, 2}, at::kLong)));
  EXPECT_TRUE(at::equal(s.iscrowd, at::tensor({0, 1, 0}, at::kByte).to(at::kBool)));
  EXPECT_TRUE(at::equal(
      s.boxes, at::tensor({2.5f, 3.f, 12.5f, 9.f, 0.f, 0.f, 20.f, 5.f, 14.f, 8.f, 19.5f, 15.5f})
                   .view({3, 4})));
  const at::Tensor masks = ds.Masks(0);
  EXPECT_EQ(masks.sizes(), (at::IntArrayRef{3, 16, 20}));
  EXPECT_EQ(masks[1].sum().item<int64_t>(), 100);  // the crowd RLE: 5 full rows
  EXPECT_TRUE(at::equal(masks[2], Decode(FromPolygons(ds.annotations()[3].polygons, 16, 20))));

  ASSERT_TRUE(ds.Decode(1, &s, &error)) << error;
  EXPECT_EQ(s.image.sizes(), (at::IntArrayRef{10, 12, 3}));  // grey replicated to RGB
  EXPECT_TRUE(at::equal(s.image.select(2, 0), s.image.select(2, 2)));
  EXPECT_TRUE(at::equal(ds.Masks(1)[0], RleMask()));  // the compressed RLE
}

TEST_F(CocoDatasetTest, MasksAreasAndBoxesMatchPycocotools) {
  const std::string path = WriteJson(GoodJson());
  const CocoDataset ds(path, "");
  const json oracle = json::parse(testing::RunOracle(
      std::string(PSAQ_TEST_DATA_DIR) + "/../model/data/coco_dataset_oracle.py", "'" + path + "'"));
  ASSERT_EQ(oracle["annotations"].size(), ds.annotations().size());
  for (const CocoAnnotation& a : ds.annotations()) {
    const json& want = oracle["annotations"][std::to_string(a.id)];
    const Rle rle = ds.MaskRle(a);
    EXPECT_EQ(ToString(rle), want["counts"].get<std::string>()) << "annotation " << a.id;
    EXPECT_EQ(Area(rle), want["mask_area"].get<int64_t>()) << "annotation " << a.id;
    EXPECT_EQ(ToBbox(rle), (want["mask_bbox"].get<std::array<double, 4>>()));
    EXPECT_EQ(a.label, want["label"].get<int64_t>());
  }
  EXPECT_EQ(oracle["num_images"].get<int64_t>(), ds.size());
}

// One bad input: a change to the good JSON (or its files) and the message it must produce.
struct BadCase {
  std::string name;
  std::function<void(json&, const testing::TempDir&)> mutate;
  std::string message;  // expected substring, after "<path>: "
  int64_t skipped_images = 0;
  int64_t skipped_annotations = 0;  // with on_bad_entry = kSkip
};

std::vector<BadCase> BadCases() {
  auto ann = [](json& j, int id) -> json& {
    for (json& a : j["annotations"]) {
      if (a["id"] == id) return a;
    }
    throw std::logic_error("no annotation");
  };
  return {
      {"missing image file",
       [](json&, const testing::TempDir& d) { std::filesystem::remove(d / "sub/b.png"); },
       "image id 2: ", 1, 1},
      {"image size differs", [](json& j, const testing::TempDir&) { j["images"][0]["width"] = 21; },
       "image id 1: ", 1, 3},
      {"duplicate image id",
       [](json& j, const testing::TempDir&) { j["images"].push_back(j["images"][0]); },
       "image id 1: duplicate image id", 1, 0},
      {"width not an integer",
       [](json& j, const testing::TempDir&) { j["images"][1]["width"] = "12"; },
       "image id 2: \"width\" must be an integer, got string", 1, 1},
      {"image too large",
       [](json& j, const testing::TempDir&) { j["images"][1]["width"] = int64_t{1} << 40; },
       "image id 2: size 1099511627776x10 is not positive or exceeds 67108864 pixels", 1, 1},
      {"image without file_name",
       [](json& j, const testing::TempDir&) { j["images"][1].erase("file_name"); },
       "image id 2: missing \"file_name\"", 1, 1},
      {"bbox outside", [ann](json& j, const testing::TempDir&) { ann(j, 17)["bbox"][2] = 19; },
       "annotation id 17: bbox [2.5, 3, 19, 6] outside image 1 (20x16)", 0, 1},
      {"bbox negative", [ann](json& j, const testing::TempDir&) { ann(j, 17)["bbox"][0] = -1; },
       "annotation id 17: bbox [-1, 3, 10, 6] outside image 1", 0, 1},
      {"bbox zero width", [ann](json& j, const testing::TempDir&) { ann(j, 18)["bbox"][2] = 0; },
       "annotation id 18: bbox [3, 2, 0, 5] has a non-positive size", 0, 1},
      {"bbox of 3 values",
       [ann](json& j, const testing::TempDir&) {
         ann(j, 18)["bbox"] = {1, 2, 3};
       },
       "annotation id 18: \"bbox\" must be [x, y, w, h]", 0, 1},
      {"unknown category",
       [ann](json& j, const testing::TempDir&) { ann(j, 20)["category_id"] = 99; },
       "annotation id 20: unknown category id 99", 0, 1},
      {"unknown image", [ann](json& j, const testing::TempDir&) { ann(j, 20)["image_id"] = 42; },
       "annotation id 20: unknown image id 42", 0, 1},
      {"duplicate annotation id",
       [ann](json& j, const testing::TempDir&) { ann(j, 20)["id"] = 17; },
       "annotation id 17: duplicate annotation id", 0, 1},
      {"annotation id a string",
       [ann](json& j, const testing::TempDir&) { ann(j, 20)["id"] = "20"; },
       "annotations[3]: \"id\" must be an integer", 0, 1},
      {"polygon of 4 coordinates",
       [ann](json& j, const testing::TempDir&) {
         ann(j, 20)["segmentation"][1] = {1, 2, 3, 4};
       },
       "annotation id 20: segmentation polygon 1 has 4 coordinates", 0, 1},
      {"polygon coordinate a string",
       [ann](json& j, const testing::TempDir&) { ann(j, 17)["segmentation"][0][3] = "3"; },
       "annotation id 17: segmentation polygon 0 coordinate must be a number", 0, 1},
      {"no polygon",
       [ann](json& j, const testing::TempDir&) { ann(j, 17)["segmentation"] = json::array(); },
       "annotation id 17: \"segmentation\" has no polygon", 0, 1},
      {"RLE size mismatch",
       [ann](json& j, const testing::TempDir&) {
         ann(j, 18)["segmentation"]["size"] = {10, 13};
       },
       "annotation id 18: RLE size [10, 13] is not image 2's [10, 12]", 0, 1},
      {"RLE counts short",
       [ann](json& j, const testing::TempDir&) {
         ann(j, 19)["segmentation"]["counts"].push_back(3);
       },
       "annotation id 19: RLE: counts sum to 323, size [16, 20] has 320 pixels", 0, 1},
      {"RLE counts bad string",
       [ann](json& j, const testing::TempDir&) { ann(j, 18)["segmentation"]["counts"] = "0a|"; },
       "annotation id 18: RLE counts: compressed RLE has character '|'", 0, 1},
      {"missing area", [ann](json& j, const testing::TempDir&) { ann(j, 17).erase("area"); },
       "annotation id 17: missing \"area\"", 0, 1},
      {"missing segmentation",
       [ann](json& j, const testing::TempDir&) { ann(j, 17).erase("segmentation"); },
       "annotation id 17: missing \"segmentation\"", 0, 1},
      {"iscrowd 2", [ann](json& j, const testing::TempDir&) { ann(j, 17)["iscrowd"] = 2; },
       "annotation id 17: \"iscrowd\" must be 0 or 1", 0, 1},
  };
}

TEST_F(CocoDatasetTest, RejectsBadEntriesNamingFileAndEntry) {
  for (const BadCase& c : BadCases()) {
    SCOPED_TRACE(c.name);
    SetUp();  // restore the image files
    json j = GoodJson();
    c.mutate(j, dir_);
    const std::string path = WriteJson(j);
    try {
      CocoDataset ds(path, "");
      ADD_FAILURE() << "no error";
    } catch (const model::DatasetError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(path + ": " + c.message, 0), 0u) << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
    CocoOptions skip;
    skip.on_bad_entry = BadEntryPolicy::kSkip;
    const CocoDataset ds(path, "", skip);
    EXPECT_EQ(ds.skipped_images(), c.skipped_images);
    EXPECT_EQ(ds.skipped_annotations(), c.skipped_annotations);
    EXPECT_EQ(ds.size(), 2 - c.skipped_images + (c.name == "duplicate image id" ? 1 : 0));
    EXPECT_EQ(static_cast<int64_t>(ds.annotations().size()), 4 - c.skipped_annotations);
    ASSERT_EQ(static_cast<int64_t>(ds.skip_reasons().size()),
              c.skipped_images + c.skipped_annotations);
    EXPECT_NE(ds.skip_reasons()[0].find(c.message), std::string::npos) << ds.skip_reasons()[0];
  }
}

TEST_F(CocoDatasetTest, RejectsBadFilesEvenWhenSkipping) {
  CocoOptions skip;
  skip.on_bad_entry = BadEntryPolicy::kSkip;
  auto message = [&](const std::string& text) -> std::string {
    const std::string path = WriteJson(text);
    try {
      CocoDataset ds(path, "", skip);
    } catch (const model::DatasetError& e) {
      const std::string m = e.what();
      EXPECT_EQ(m.rfind(path + ": ", 0), 0u) << m;
      return m.substr(path.size() + 2);
    }
    return "no error";
  };
  EXPECT_EQ(message("{\"images\": [}").rfind("malformed JSON (byte 13)", 0), 0u);
  EXPECT_NE(message("{\"images\": [}").find("line 1, column 13"), std::string::npos);
  json j = GoodJson();
  j.erase("images");
  EXPECT_EQ(message(j.dump()), "missing top-level \"images\"");
  j = GoodJson();
  j["annotations"] = json::object();
  EXPECT_EQ(message(j.dump()), "\"annotations\" must be an array, got object");
  j = GoodJson();
  j["categories"].push_back({{"id", 3}, {"name", "again"}});
  EXPECT_EQ(message(j.dump()), "category id 3: duplicate category id");
  EXPECT_EQ(message("[1, 2]"), "top level must be an object, got array");
  EXPECT_NE(message(std::string(100, '[') + std::string(100, ']')).find("nests deeper"),
            std::string::npos);
  try {
    CocoDataset ds(dir_ / "missing.json", "");
    ADD_FAILURE() << "no error";
  } catch (const model::DatasetError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.json: cannot open"), std::string::npos)
        << e.what();
  }
}

TEST_F(CocoDatasetTest, MasksPastTheByteLimitAreRefusedBeforeAllocating) {
  // 33 masks of 8192x8192 (the largest image) are 2.2 GB > kMaxMaskBytes.
  json j = GoodJson();
  j["images"] = {{{"id", 1}, {"file_name", "big.png"}, {"width", 8192}, {"height", 8192}}};
  j["annotations"] = json::array();
  for (int i = 0; i < 33; ++i) {
    j["annotations"].push_back({{"id", i + 1},
                                {"image_id", 1},
                                {"category_id", 3},
                                {"bbox", {0, 0, 1, 1}},
                                {"area", 1},
                                {"segmentation", {{0, 0, 1, 0, 1, 1}}}});
  }
  CocoOptions options;
  options.check_image_files = false;
  const std::string path = WriteJson(j);
  const CocoDataset ds(path, "", options);
  try {
    ds.Masks(0);
    ADD_FAILURE() << "no error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace())
                  .find(path + ": image id 1: 33 masks of 8192x8192 exceed the 2147483648 bytes"),
              std::string::npos)
        << e.what_without_backtrace();
  }
}

TEST_F(CocoDatasetTest, DecodeReportsAnImageThatChangedSinceOpen) {
  const CocoDataset ds(WriteJson(GoodJson()), "");
  WritePng(dir_ / "a.png", 16, 21, 3);
  CocoSample s;
  std::string error;
  EXPECT_FALSE(ds.Decode(0, &s, &error));
  EXPECT_NE(error.find("a.png: decoded to 21x16, the JSON says 20x16"), std::string::npos) << error;
}

TEST_F(CocoDatasetTest, OpenedByNameAsADetectionSet) {
  const std::string path = WriteJson(GoodJson());
  EXPECT_TRUE(model::IsDetectionDataset(path));
  EXPECT_FALSE(model::IsDetectionDataset("fashion_mnist"));
  EXPECT_EQ(model::OpenDetectionDataset(path, dir_.path().string())->size(), 2);
  try {
    model::OpenImageDataset(path, "", "test");
    ADD_FAILURE() << "no error";
  } catch (const model::DatasetError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": a COCO detection set, not a classification dataset");
  }
}

}  // namespace
}  // namespace psaq::data
