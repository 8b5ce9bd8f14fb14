// Test data for the COCO evaluator (model/data/coco_eval.h): random ground truth and detections
// that populate every branch of the matching (all area ranges, crowd regions, wrong categories,
// equal scores, images without ground truth or without detections), and their JSON files.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "model/data/coco_eval.h"
#include "model/data/coco_mask.h"

namespace psaq::testing {

struct CocoCase {
  data::CocoGroundTruth gt;
  std::vector<data::CocoDetection> detections;
  // Annotations (by id) whose mask was made from these polygons: the JSON writes the polygons.
  std::map<int64_t, std::vector<std::vector<double>>> polygons;
};

// The ellipse inscribed in box {x, y, w, h} on a height x width canvas: pixels whose centre is
// inside.
inline data::Rle EllipseMask(const std::array<double, 4>& box, int64_t height, int64_t width) {
  const at::Tensor ys = at::arange(height, at::kDouble).add_(0.5).unsqueeze(1);
  const at::Tensor xs = at::arange(width, at::kDouble).add_(0.5).unsqueeze(0);
  const double rx = box[2] / 2, ry = box[3] / 2;
  const at::Tensor inside =
      ((xs - (box[0] + rx)) / rx).square() + ((ys - (box[1] + ry)) / ry).square() <= 1.0;
  return data::Encode(inside);
}

// An octagon inside box {x, y, w, h}, as a COCO polygon.
inline std::vector<double> OctagonPolygon(const std::array<double, 4>& b) {
  const double x0 = b[0], y0 = b[1], x1 = b[0] + b[2], y1 = b[1] + b[3];
  const double dx = b[2] / 3, dy = b[3] / 3;
  return {x0 + dx, y0, x1 - dx, y0, x1, y0 + dy, x1, y1 - dy,
          x1 - dx, y1, x0 + dx, y1, x0, y1 - dy, x0, y0 + dy};
}

struct RandomCocoOptions {
  int images = 12;
  int categories = 6;
  int max_objects = 8;               // ground-truth objects per image: uniform in [0, max_objects]
  int max_false_positives = 6;       // extra random boxes per image: uniform in [0, this]
  int crowded_image_detections = 0;  // this many more detections on the first image (> 100 cut)
  // Masks for segm: ground truth as ellipses (a third as octagon polygons) in their boxes, area
  // the mask's; detections as ellipses in their boxes.
  bool masks = false;
};

// Deterministic for a seed (std::mt19937_64; libstdc++'s distributions).
inline CocoCase RandomCocoCase(uint64_t seed, const RandomCocoOptions& o = {}) {
  std::mt19937_64 rng(seed);
  auto uniform = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  auto pick = [&](int64_t n) { return std::uniform_int_distribution<int64_t>(0, n - 1)(rng); };
  CocoCase c;
  // Category ids spaced and listed out of order: the evaluator sorts them.
  for (int k = 0; k < o.categories; ++k) c.gt.category_ids.push_back(3 * k + 1);
  std::shuffle(c.gt.category_ids.begin(), c.gt.category_ids.end(), rng);
  const double width = 200, height = 160;
  auto random_box = [&]() {
    // Log-uniform sides from 4 to 150 px: small, medium and large areas all occur.
    const double w = std::exp(uniform(std::log(4.0), std::log(150.0)));
    const double h = std::exp(uniform(std::log(4.0), std::log(150.0)));
    return std::array<double, 4>{uniform(0, width - std::min(w, width - 1)),
                                 uniform(0, height - std::min(h, height - 1)), w, h};
  };
  auto random_score = [&]() {
    const double s = uniform(0, 1);
    return pick(3) == 0 ? std::round(s * 10) / 10 : s;  // a third on a 0.1 grid: ties
  };
  std::vector<int64_t> image_ids;  // not in file order: the evaluator sorts them
  for (int i = 0; i < o.images; ++i) image_ids.push_back(1000 + 7 * i);
  std::shuffle(image_ids.begin(), image_ids.end(), rng);
  int64_t annotation_id = 1;
  for (int i = 0; i < o.images; ++i) {
    data::CocoGtImage image;
    image.id = image_ids[i];
    image.height = static_cast<int64_t>(height);
    image.width = static_cast<int64_t>(width);
    const int64_t n = pick(o.max_objects + 1);
    for (int64_t j = 0; j < n; ++j) {
      data::CocoGtObject g;
      g.id = annotation_id++;
      g.category_id = c.gt.category_ids[pick(o.categories)];
      g.bbox = random_box();
      g.area = g.bbox[2] * g.bbox[3] * uniform(0.5, 1.0);  // like a mask inside its box
      g.iscrowd = pick(12) == 0;
      if (o.masks) {
        if (pick(3) == 0 && !g.iscrowd) {
          c.polygons[g.id] = {OctagonPolygon(g.bbox)};
          g.mask = data::FromPolygons(c.polygons[g.id], image.height, image.width);
        } else {
          g.mask = EllipseMask(g.bbox, image.height, image.width);
        }
        g.area = static_cast<double>(data::Area(*g.mask));
      }
      image.objects.push_back(g);
      if (pick(5) != 0) {  // detected, jittered, sometimes with the wrong category
        data::CocoDetection d;
        d.image_id = image.id;
        d.category_id = pick(10) == 0 ? c.gt.category_ids[pick(o.categories)] : g.category_id;
        d.bbox = g.bbox;
        for (int q = 0; q < 4; ++q) d.bbox[q] += uniform(-0.15, 0.15) * g.bbox[2 + q % 2];
        d.bbox[2] = std::max(d.bbox[2], 1.0);
        d.bbox[3] = std::max(d.bbox[3], 1.0);
        d.score = random_score();
        if (o.masks) d.mask = EllipseMask(d.bbox, image.height, image.width);
        c.detections.push_back(d);
      }
    }
    int64_t extra = pick(o.max_false_positives + 1);
    if (i == 0) extra += o.crowded_image_detections;
    for (int64_t j = 0; j < extra; ++j) {
      data::CocoDetection d;
      d.image_id = image.id;
      d.category_id = c.gt.category_ids[pick(o.categories)];
      d.bbox = random_box();
      d.score = random_score();
      if (o.masks) d.mask = EllipseMask(d.bbox, image.height, image.width);
      c.detections.push_back(d);
    }
    c.gt.images.push_back(std::move(image));
  }
  std::shuffle(c.detections.begin(), c.detections.end(), rng);
  return c;
}

// A mask as a COCO RLE object: compressed counts, or (uncompressed) the runs as a list.
inline nlohmann::json RleJson(const data::Rle& rle, bool compressed) {
  nlohmann::json j = {{"size", {rle.height, rle.width}}};
  if (compressed) {
    j["counts"] = data::ToString(rle);
  } else {
    j["counts"] = rle.counts;
  }
  return j;
}

// An instances JSON of the case's ground truth (areas and boxes round-trip exactly); masks as
// polygons where the case has them, uncompressed RLE for crowd regions (as COCO stores them),
// compressed RLE otherwise.
inline std::string CocoGtJson(const CocoCase& c) {
  const data::CocoGroundTruth& gt = c.gt;
  nlohmann::json root;
  root["images"] = nlohmann::json::array();
  root["annotations"] = nlohmann::json::array();
  root["categories"] = nlohmann::json::array();
  for (const auto& image : gt.images) {
    root["images"].push_back({{"id", image.id}, {"height", image.height}, {"width", image.width}});
    for (const auto& g : image.objects) {
      nlohmann::json a = {{"id", g.id},     {"image_id", image.id}, {"category_id", g.category_id},
                          {"bbox", g.bbox}, {"area", g.area},       {"iscrowd", g.iscrowd ? 1 : 0}};
      const auto polygons = c.polygons.find(g.id);
      if (polygons != c.polygons.end()) {
        a["segmentation"] = polygons->second;
      } else if (g.mask.has_value()) {
        a["segmentation"] = RleJson(*g.mask, !g.iscrowd);
      }
      root["annotations"].push_back(a);
    }
  }
  for (int64_t k : gt.category_ids) {
    root["categories"].push_back({{"id", k}, {"name", "c" + std::to_string(k)}});
  }
  return root.dump();
}

// A results JSON of `detections`, masks as compressed RLE. With boxes their area is the box's
// (loadRes); without, the mask's area and box.
inline std::string CocoResultsJson(const std::vector<data::CocoDetection>& detections,
                                   bool boxes = true) {
  nlohmann::json root = nlohmann::json::array();
  for (const auto& d : detections) {
    nlohmann::json r = {
        {"image_id", d.image_id}, {"category_id", d.category_id}, {"score", d.score}};
    if (boxes) r["bbox"] = d.bbox;
    if (d.mask.has_value()) r["segmentation"] = RleJson(*d.mask, true);
    root.push_back(r);
  }
  return root.dump();
}

}  // namespace psaq::testing
