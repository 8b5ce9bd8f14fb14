// The COCO mask codec against pycocotools 2.0.8 (tests/model/data/coco_mask_oracle.py): runs,
// compressed strings, areas and boxes exactly equal, IoUs within kIouTolerance; plus its errors.
#include "model/data/coco_mask.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "tests/testing/oracle.h"
#include "tests/testing/temp_dir.h"

namespace psaq::data {
namespace {

using nlohmann::json;

// pycocotools computes IoU in double as intersection / union of the same integers: equal up to
// the last bit in practice; the bound allows for a different but equally exact evaluation order.
constexpr double kIouTolerance = 1e-12;

std::string OracleScript() {
  return std::string(PSAQ_TEST_DATA_DIR) + "/../model/data/coco_mask_oracle.py";
}

at::Tensor RandomMask(std::mt19937& rng, int64_t h, int64_t w, double density) {
  std::bernoulli_distribution set(density);
  at::Tensor m = at::zeros({h, w}, at::kBool);
  auto a = m.accessor<bool, 2>();
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) a[y][x] = set(rng);
  }
  return m;
}

// A union of 1-3 random rectangles: masks whose IoUs are neither 0 nor 1.
at::Tensor BlobMask(std::mt19937& rng, int64_t h, int64_t w) {
  at::Tensor m = at::zeros({h, w}, at::kBool);
  std::uniform_int_distribution<int> count(1, 3);
  for (int i = count(rng); i > 0; --i) {
    const int64_t y0 = std::uniform_int_distribution<int64_t>(0, h - 1)(rng);
    const int64_t x0 = std::uniform_int_distribution<int64_t>(0, w - 1)(rng);
    const int64_t y1 = std::uniform_int_distribution<int64_t>(y0 + 1, h)(rng);
    const int64_t x1 = std::uniform_int_distribution<int64_t>(x0 + 1, w)(rng);
    m.slice(0, y0, y1).slice(1, x0, x1).fill_(true);
  }
  return m;
}

std::string Bits(const at::Tensor& mask) {  // row-major '0'/'1'
  std::string s;
  const at::Tensor flat = mask.contiguous().view(-1);
  const bool* p = flat.data_ptr<bool>();
  for (int64_t i = 0; i < flat.numel(); ++i) s.push_back(p[i] ? '1' : '0');
  return s;
}

std::vector<uint32_t> Runs(const json& j) { return j.get<std::vector<uint32_t>>(); }

std::array<double, 4> Box(const json& j) { return j.get<std::array<double, 4>>(); }

struct PolyCase {
  std::vector<std::vector<double>> polygons;
  int64_t h, w;
};

std::vector<PolyCase> PolygonCases(std::mt19937& rng) {
  std::vector<PolyCase> cases = {
      {{{2, 2, 20, 3, 11, 17}}, 24, 24},                             // convex triangle
      {{{0, 0, 16, 0, 16, 12, 0, 12}}, 12, 16},                      // the whole image
      {{{3, 3, 20, 3, 20, 20, 12, 8, 3, 20}}, 24, 24},               // concave
      {{{10.1, 10.1, 10.3, 10.1, 10.2, 10.4}}, 24, 24},              // tiny: no pixel centre
      {{{9.4, 9.4, 10.6, 9.4, 10.6, 10.6, 9.4, 10.6}}, 24, 24},      // tiny: one centre
      {{{-3, -2, 30, 5, 12, 40}}, 20, 25},                           // past every border
      {{{-0.7, -0.3, 5.5, -0.2, 5.5, 6.5}}, 10, 10},                 // negative: C cast
      {{{0.5, 0.5, 7.5, 0.5, 7.5, 7.5, 0.5, 7.5}}, 8, 8},            // on pixel centres
      {{{1, 1, 6, 1, 6, 6}, {4, 4, 12, 4, 12, 12, 4, 12}}, 14, 14},  // two, overlapping
      {{{2, 2, 30, 30, 30, 2, 2, 30}}, 32, 32},                      // self-intersecting
      {{{0, 0, 1, 0, 1, 1, 0, 1}}, 1, 1},                            // 1x1 image
      {{{5, 1, 9, 9, 1, 9, 5, 1, 5, 5}}, 12, 11},                    // repeated vertex
  };
  // Random polygons, 3-12 vertices, some past the borders.
  for (int i = 0; i < 40; ++i) {
    const int64_t h = std::uniform_int_distribution<int64_t>(1, 60)(rng);
    const int64_t w = std::uniform_int_distribution<int64_t>(1, 60)(rng);
    std::uniform_real_distribution<double> xs(-0.2 * w, 1.2 * w), ys(-0.2 * h, 1.2 * h);
    const int vertices = std::uniform_int_distribution<int>(3, 12)(rng);
    std::vector<double> p;
    for (int v = 0; v < vertices; ++v) {
      p.push_back(xs(rng));
      p.push_back(ys(rng));
    }
    cases.push_back({{p}, h, w});
  }
  // Consecutive vertices on the same 5x grid point (repeated vertices are common in real COCO
  // polygons): pycocotools divides 0 by 0 there (the coco fuzz target's UBSan finding).
  cases.push_back({{{1, 1, 1, 1, 5, 1, 5, 5, 1, 5}}, 10, 12});
  cases.push_back({{{2, 2, 2.01, 2.01, 8, 2, 8, 7, 2, 7, 2, 7}}, 10, 12});
  return cases;
}

TEST(CocoMaskTest, MatchesPycocotools) {
  std::mt19937 rng(19);
  std::vector<at::Tensor> masks = {at::zeros({5, 7}, at::kBool), at::ones({4, 3}, at::kBool),
                                   at::ones({1, 1}, at::kBool), at::zeros({1, 1}, at::kBool)};
  for (auto [h, w] :
       std::vector<std::pair<int64_t, int64_t>>{{13, 17}, {32, 24}, {1, 40}, {40, 1}}) {
    for (double density : {0.1, 0.5, 0.9}) masks.push_back(RandomMask(rng, h, w, density));
  }
  const size_t first_blob = masks.size();
  for (int i = 0; i < 14; ++i) masks.push_back(BlobMask(rng, 40, 30));
  masks.push_back(at::zeros({40, 30}, at::kBool));  // an empty mask among the blobs
  const size_t empty_blob = masks.size() - 1;

  json cases;
  cases["masks"] = json::array();
  for (const auto& m : masks) {
    cases["masks"].push_back({{"h", m.size(0)}, {"w", m.size(1)}, {"bits", Bits(m)}});
  }
  const std::vector<PolyCase> polys = PolygonCases(rng);
  cases["polys"] = json::array();
  for (const auto& p : polys) {
    cases["polys"].push_back({{"polygons", p.polygons}, {"h", p.h}, {"w", p.w}});
  }
  const std::vector<std::pair<std::array<double, 4>, std::array<int64_t, 2>>> boxes = {
      {{2, 3, 10, 5}, {20, 20}}, {{0.4, 0.6, 7.3, 2.2}, {10, 10}}, {{-2, -2, 30, 30}, {16, 12}}};
  cases["boxes"] = json::array();
  for (const auto& [b, size] : boxes) {
    cases["boxes"].push_back({{"box", b}, {"h", size[0]}, {"w", size[1]}});
  }
  const std::vector<std::vector<size_t>> merges = {{first_blob, first_blob + 1},
                                                   {first_blob + 2, first_blob + 3, first_blob + 4},
                                                   {first_blob + 5, empty_blob},
                                                   {first_blob + 6}};
  cases["merges"] = merges;
  struct IouCase {
    std::vector<size_t> dt, gt;
    std::vector<bool> iscrowd;
  };
  std::vector<IouCase> ious;
  {
    IouCase c;
    for (size_t i = first_blob; i < first_blob + 8; ++i) c.dt.push_back(i);
    c.dt.push_back(empty_blob);
    for (size_t i = first_blob + 4; i <= empty_blob; ++i) {
      c.gt.push_back(i);
      c.iscrowd.push_back(i % 3 == 0);
    }
    ious.push_back(c);
    ious.push_back({{4, 5, 6}, {5, 6}, {false, true}});  // random 13x17 masks
    ious.push_back({{first_blob}, {}, {}});
  }
  cases["ious"] = json::array();
  for (const auto& c : ious) {
    cases["ious"].push_back({{"dt", c.dt}, {"gt", c.gt}, {"iscrowd", c.iscrowd}});
  }
  std::uniform_real_distribution<double> coord(0, 50), extent(0.5, 30);
  std::vector<double> box_dt, box_gt;
  for (int i = 0; i < 12; ++i) {
    box_dt.insert(box_dt.end(), {coord(rng), coord(rng), extent(rng), extent(rng)});
  }
  for (int i = 0; i < 7; ++i) {
    box_gt.insert(box_gt.end(), {coord(rng), coord(rng), extent(rng), extent(rng)});
  }
  box_dt.insert(box_dt.end(), {10, 10, 5, 5});  // touches the next ground truth: IoU 0
  box_gt.insert(box_gt.end(), {15, 10, 5, 5});
  const std::vector<bool> box_crowd = {false, true, false, false, true, false, false, true};
  cases["box_ious"] = json::array({{{"dt", box_dt}, {"gt", box_gt}, {"iscrowd", box_crowd}}});
  // Compressed strings with multi-character values and negative differences.
  const std::vector<Rle> string_rles = {
      {1000, 1000, {499999, 3, 100000, 1, 399997}},
      {1000, 1000, {0, 700000, 5, 299995}},
      {64, 64, {7, 1, 1000, 2000, 3, 1085}},
  };
  cases["strings"] = json::array();
  for (const auto& r : string_rles) {
    CheckRle(r);
    cases["strings"].push_back({{"string", ToString(r)}, {"h", r.height}, {"w", r.width}});
  }

  testing::TempDir dir;
  const std::string path = dir.Write("cases.json", cases.dump());
  const json oracle = json::parse(testing::RunOracle(OracleScript(), "'" + path + "'"));

  for (size_t i = 0; i < masks.size(); ++i) {
    SCOPED_TRACE("mask " + std::to_string(i));
    const json& want = oracle["masks"][i];
    const Rle rle = Encode(masks[i]);
    EXPECT_EQ(rle.counts, Runs(want["runs"]));
    EXPECT_EQ(ToString(rle), want["string"].get<std::string>());
    EXPECT_EQ(FromString(want["string"].get<std::string>(), rle.height, rle.width).counts,
              rle.counts);
    EXPECT_EQ(Area(rle), want["area"].get<int64_t>());
    EXPECT_EQ(ToBbox(rle), Box(want["bbox"]));
    EXPECT_TRUE(at::equal(Decode(rle), masks[i]));
  }
  for (size_t i = 0; i < polys.size(); ++i) {
    SCOPED_TRACE("polygon case " + std::to_string(i));
    const json& want = oracle["polys"][i];
    const Rle rle = FromPolygons(polys[i].polygons, polys[i].h, polys[i].w);
    EXPECT_EQ(rle.counts, Runs(want["runs"]));
    EXPECT_EQ(ToString(rle), want["string"].get<std::string>());
    EXPECT_EQ(Area(rle), want["area"].get<int64_t>());
    EXPECT_EQ(ToBbox(rle), Box(want["bbox"]));
  }
  int64_t nonempty_polygons = 0;
  for (const auto& p : oracle["polys"]) nonempty_polygons += p["area"].get<int64_t>() > 0;
  EXPECT_GT(nonempty_polygons, 40);  // the cases are not all trivially empty
  for (size_t i = 0; i < boxes.size(); ++i) {
    SCOPED_TRACE("box case " + std::to_string(i));
    const Rle rle = FromBbox(boxes[i].first, boxes[i].second[0], boxes[i].second[1]);
    EXPECT_EQ(rle.counts, Runs(oracle["boxes"][i]["runs"]));
  }
  for (size_t i = 0; i < merges.size(); ++i) {
    SCOPED_TRACE("merge " + std::to_string(i));
    std::vector<Rle> parts;
    for (size_t m : merges[i]) parts.push_back(Encode(masks[m]));
    EXPECT_EQ(ToString(Merge(parts)), oracle["merges"][i]["union"].get<std::string>());
    EXPECT_EQ(ToString(Merge(parts, /*intersect=*/true)),
              oracle["merges"][i]["intersection"].get<std::string>());
  }
  double max_iou_diff = 0;
  int64_t partial = 0;
  for (size_t i = 0; i < ious.size(); ++i) {
    std::vector<Rle> dt, gt;
    for (size_t m : ious[i].dt) dt.push_back(Encode(masks[m]));
    for (size_t m : ious[i].gt) gt.push_back(Encode(masks[m]));
    const at::Tensor got = Iou(dt, gt, ious[i].iscrowd);
    ASSERT_EQ(got.sizes(),
              (at::IntArrayRef{static_cast<int64_t>(dt.size()), static_cast<int64_t>(gt.size())}));
    for (int64_t d = 0; d < got.size(0); ++d) {
      for (int64_t g = 0; g < got.size(1); ++g) {
        const double want = oracle["ious"][i][d][g].get<double>();
        const double have = got[d][g].item<double>();
        max_iou_diff = std::max(max_iou_diff, std::fabs(want - have));
        partial += want > 0 && want < 1;
      }
    }
  }
  EXPECT_LE(max_iou_diff, kIouTolerance);
  EXPECT_GT(partial, 10);
  const at::Tensor box_iou = BoxIou(at::tensor(box_dt, at::kDouble).view({-1, 4}),
                                    at::tensor(box_gt, at::kDouble).view({-1, 4}), box_crowd);
  double max_box_diff = 0;
  int64_t box_partial = 0;
  for (int64_t d = 0; d < box_iou.size(0); ++d) {
    for (int64_t g = 0; g < box_iou.size(1); ++g) {
      const double want = oracle["box_ious"][0][d][g].get<double>();
      max_box_diff = std::max(max_box_diff, std::fabs(want - box_iou[d][g].item<double>()));
      box_partial += want > 0;
    }
  }
  EXPECT_LE(max_box_diff, kIouTolerance);
  EXPECT_GT(box_partial, 5);
  EXPECT_EQ(box_iou[12][7].item<double>(), 0.0);  // touching boxes
  for (size_t i = 0; i < string_rles.size(); ++i) {
    EXPECT_EQ(Runs(oracle["strings"][i]), string_rles[i].counts) << "string case " << i;
    EXPECT_EQ(FromString(ToString(string_rles[i]), 1000, 1000).counts, string_rles[i].counts);
  }
  std::printf(
      "coco_mask vs pycocotools: %zu masks, %zu polygon cases, max |IoU diff| %.3g, "
      "max |box IoU diff| %.3g\n",
      masks.size(), polys.size(), max_iou_diff, max_box_diff);
}

TEST(CocoMaskTest, CrowdIouIsIntersectionOverDetectionArea) {
  at::Tensor dt = at::zeros({4, 4}, at::kBool), gt = at::zeros({4, 4}, at::kBool);
  dt.slice(0, 0, 2).fill_(true);  // 8 pixels
  gt.slice(0, 1, 4).fill_(true);  // 12 pixels; 4 shared
  const at::Tensor iou = Iou({Encode(dt)}, {Encode(gt), Encode(gt)}, {false, true});
  EXPECT_DOUBLE_EQ(iou[0][0].item<double>(), 4.0 / 16.0);
  EXPECT_DOUBLE_EQ(iou[0][1].item<double>(), 4.0 / 8.0);
}

TEST(CocoMaskTest, RejectsBadInput) {
  EXPECT_THROW(FromPolygon({1, 2, 3, 4}, 10, 10), std::exception);           // < 6 coordinates
  EXPECT_THROW(FromPolygon({1, 2, 3, 4, 5, 6, 7}, 10, 10), std::exception);  // odd
  EXPECT_THROW(FromPolygon({1, 2, 3, NAN, 5, 6}, 10, 10), std::exception);
  EXPECT_THROW(FromPolygon({1, 2, 3, 4e7, 5, 6}, 10, 10), std::exception);
  EXPECT_THROW(FromPolygon({1, 2, 3, 4, 5, 6}, 0, 10), std::exception);
  EXPECT_THROW(FromPolygons({}, 10, 10), std::exception);
  // A zigzag whose 5x boundary exceeds kMaxPolygonBoundaryPoints (refused before allocating).
  std::vector<double> zigzag;
  for (int i = 0; i < 400; ++i) zigzag.insert(zigzag.end(), {0.0, 0.0, 9e6, 9e6});
  EXPECT_THROW(FromPolygon(zigzag, 10, 10), std::exception);
  EXPECT_THROW(Decode({2, 2, {1, 2}}), std::exception);   // sums to 3, not 4
  EXPECT_THROW(FromString("0a|", 2, 2), std::exception);  // '|' is outside 48..111
  EXPECT_THROW(FromString("0a", 2, 2), std::exception);   // 'a' = 49 | continuation: cut off
  EXPECT_THROW(FromString("2@", 2, 2), std::exception);   // second run is -16
  EXPECT_THROW(Merge({{2, 2, {4}}, {2, 3, {6}}}), std::exception);
  EXPECT_THROW(Merge({}), std::exception);
  EXPECT_THROW(Iou({{2, 2, {4}}}, {{2, 2, {4}}}, {}), std::exception);
  EXPECT_THROW(Iou({{2, 2, {4}}}, {{2, 3, {6}}}, {false}), std::exception);
  EXPECT_THROW(Encode(at::zeros({2, 2, 2}, at::kBool)), std::exception);
  EXPECT_THROW(Encode(at::zeros({2, 2}, at::kFloat)), std::exception);
  EXPECT_THROW(BoxIou(at::zeros({1, 3}), at::zeros({1, 4}), {false}), std::exception);
}

TEST(CocoMaskTest, EmptyMaskHasZeroBoxAndArea) {
  const Rle rle = Encode(at::zeros({6, 9}, at::kBool));
  EXPECT_EQ(rle.counts, std::vector<uint32_t>{54});
  EXPECT_EQ(Area(rle), 0);
  EXPECT_EQ(ToBbox(rle), (std::array<double, 4>{0, 0, 0, 0}));
  EXPECT_EQ(Iou({rle}, {rle}, {false})[0][0].item<double>(), 0.0);
}

}  // namespace
}  // namespace psaq::data
