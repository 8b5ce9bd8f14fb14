// make-scenes: identical bytes for a seed, the set loads with CocoDataset and with pycocotools
// (areas, boxes and masks equal), every COCO area range occurs, masks and boxes agree.
#include "model/data/scenes.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "model/data/coco_dataset.h"
#include "tests/testing/oracle.h"
#include "tests/testing/temp_dir.h"

namespace psaq::data {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::map<std::string, std::string> FilesUnder(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    files[fs::relative(entry.path(), root).string()] = bytes.str();
  }
  return files;
}

ScenesOptions Small(uint64_t seed) {
  ScenesOptions o;
  o.split = "val";
  o.num_images = 5;
  o.seed = seed;
  return o;
}

TEST(ScenesTest, SameSeedSameBytes) {
  testing::TempDir a, b, c;
  const ScenesSummary sa = MakeScenes(Small(3), a.path().string());
  const ScenesSummary sb = MakeScenes(Small(3), b.path().string());
  const ScenesSummary sc = MakeScenes(Small(4), c.path().string());
  const auto files_a = FilesUnder(a.path());
  EXPECT_EQ(files_a.size(), 5u + 2u);  // 5 PNGs, the JSON, the manifest
  EXPECT_TRUE(files_a == FilesUnder(b.path()));
  EXPECT_EQ(sa.checksum, sb.checksum);
  EXPECT_NE(sa.checksum, sc.checksum);
  EXPECT_NE(files_a.at("instances_val.json"), FilesUnder(c.path()).at("instances_val.json"));
  EXPECT_EQ(ScenesChecksum(a.path().string(), "val"), sa.checksum);
  const json manifest = json::parse(files_a.at("scenes_val.manifest.json"));
  EXPECT_EQ(manifest["checksum"], sa.checksum);
  EXPECT_EQ(manifest["num_annotations"], sa.num_annotations);
  // A changed image changes the recomputed checksum.
  std::ofstream(a / "val/000002.png", std::ios::binary | std::ios::app) << "x";
  EXPECT_NE(ScenesChecksum(a.path().string(), "val"), sa.checksum);
}

TEST(ScenesTest, LoadsAndMasksAgreeWithBoxesAndAreas) {
  testing::TempDir dir;
  ScenesOptions o = Small(11);
  o.num_images = 40;
  const ScenesSummary s = MakeScenes(o, dir.path().string());
  // Every COCO area range occurs (small < 32^2 <= medium < 96^2 <= large).
  EXPECT_GT(s.small, 0);
  EXPECT_GT(s.medium, 0);
  EXPECT_GT(s.large, 0);
  EXPECT_GE(s.num_annotations, 2 * 40 * 8 / 10);  // few items are left out
  std::printf("scenes: 40 images, %lld annotations, small %lld, medium %lld, large %lld\n",
              static_cast<long long>(s.num_annotations), static_cast<long long>(s.small),
              static_cast<long long>(s.medium), static_cast<long long>(s.large));

  const CocoDataset ds(s.json_path, "");
  ASSERT_EQ(ds.size(), 40);
  ASSERT_EQ(static_cast<int64_t>(ds.annotations().size()), s.num_annotations);
  ASSERT_EQ(ds.num_classes(), 10);
  EXPECT_EQ(ds.categories()[0].name, "T-shirt/top");
  for (int64_t i = 0; i < ds.size(); ++i) {
    CocoSample sample;
    std::string error;
    ASSERT_TRUE(ds.Decode(i, &sample, &error)) << error;
    EXPECT_EQ(sample.image.sizes(), (at::IntArrayRef{224, 224, 3}));
    const at::Tensor masks = ds.Masks(i);
    ASSERT_GE(masks.size(0), 1);
    // Occlusion: no pixel belongs to two items.
    EXPECT_LE(masks.to(at::kInt).sum(0).max().item<int>(), 1);
    for (int64_t k = 0; k < masks.size(0); ++k) {
      const CocoAnnotation& a =
          ds.annotations()[static_cast<size_t>(ds.annotations_of(i)[static_cast<size_t>(k)])];
      const at::Tensor m = masks[k];
      EXPECT_EQ(m.sum().item<int64_t>(), static_cast<int64_t>(a.area));
      // The box is the mask's tight box: all of the mask inside, each side touched.
      const auto x = static_cast<int64_t>(a.bbox[0]), y = static_cast<int64_t>(a.bbox[1]);
      const auto w = static_cast<int64_t>(a.bbox[2]), h = static_cast<int64_t>(a.bbox[3]);
      const at::Tensor inside = m.slice(0, y, y + h).slice(1, x, x + w);
      EXPECT_EQ(inside.sum().item<int64_t>(), m.sum().item<int64_t>());
      EXPECT_TRUE(inside.select(0, 0).any().item<bool>() &&
                  inside.select(0, h - 1).any().item<bool>());
      EXPECT_TRUE(inside.select(1, 0).any().item<bool>() &&
                  inside.select(1, w - 1).any().item<bool>());
      EXPECT_TRUE(
          at::equal(sample.boxes[k], at::tensor({float(x), float(y), float(x + w), float(y + h)})));
    }
  }

  const json oracle = json::parse(
      testing::RunOracle(std::string(PSAQ_TEST_DATA_DIR) + "/../model/data/coco_dataset_oracle.py",
                         "'" + s.json_path + "'"));
  EXPECT_EQ(oracle["num_images"].get<int64_t>(), 40);
  ASSERT_EQ(oracle["num_annotations"].get<int64_t>(), s.num_annotations);
  for (const CocoAnnotation& a : ds.annotations()) {
    const json& want = oracle["annotations"][std::to_string(a.id)];
    const Rle rle = ds.MaskRle(a);
    EXPECT_EQ(ToString(rle), want["counts"].get<std::string>());
    EXPECT_EQ(Area(rle), want["mask_area"].get<int64_t>());
    EXPECT_EQ(want["area"].get<double>(), a.area);  // the file's area is pycocotools' mask area
    EXPECT_EQ(ToBbox(rle), (want["mask_bbox"].get<std::array<double, 4>>()));
    EXPECT_EQ((want["bbox"].get<std::array<double, 4>>()), a.bbox);
  }
}

TEST(ScenesTest, RejectsBadOptions) {
  auto message = [](const ScenesOptions& o) -> std::string {
    try {
      ValidateScenesOptions(o);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "accepted";
  };
  ScenesOptions o;
  EXPECT_EQ(message(o), "accepted");
  o.split = "test";
  EXPECT_EQ(message(o), "split 'test': must be train or val");
  o = {};
  o.num_images = 0;
  EXPECT_EQ(message(o), "num_images 0: must be in [1, 200000]");
  o.num_images = kMaxScenesImages + 1;
  EXPECT_EQ(message(o), "num_images 200001: must be in [1, 200000]");
  o = {};
  o.canvas_size = 100;
  EXPECT_EQ(message(o), "item sizes 28..160: must satisfy 4 <= min <= max <= canvas_size (100)");
  o = {};
  o.min_items = 3;
  o.max_items = 2;
  EXPECT_EQ(message(o), "items 3..2: must satisfy 1 <= min <= max <= 32");
  o = {};
  o.mask_threshold = 255;
  EXPECT_EQ(message(o), "mask_threshold 255: must be in [0, 254]");
  o = {};
  o.min_visible_fraction = 0;
  EXPECT_NE(message(o).find("min_visible_fraction"), std::string::npos);
  testing::TempDir dir;
  o = Small(1);
  o.fashion_mnist_dir = dir / "none";
  EXPECT_THROW(MakeScenes(o, dir / "out"), std::runtime_error);
}

}  // namespace
}  // namespace psaq::data
