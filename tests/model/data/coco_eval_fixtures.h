// Test data for the COCO evaluator (model/data/coco_eval.h): random ground truth and detections
// that populate every branch of the matching (all area ranges, crowd regions, wrong categories,
// equal scores, images without ground truth or without detections), and their JSON files.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "model/data/coco_eval.h"

namespace psaq::testing {

struct CocoCase {
  data::CocoGroundTruth gt;
  std::vector<data::CocoDetection> detections;
};

struct RandomCocoOptions {
  int images = 12;
  int categories = 6;
  int max_objects = 8;         // ground-truth objects per image: uniform in [0, max_objects]
  int max_false_positives = 6; // extra random boxes per image: uniform in [0, this]
  int crowded_image_detections = 0;  // this many more detections on the first image (> 100 cut)
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
      c.detections.push_back(d);
    }
    c.gt.images.push_back(std::move(image));
  }
  std::shuffle(c.detections.begin(), c.detections.end(), rng);
  return c;
}

// An instances JSON of `gt` (areas and boxes round-trip exactly).
inline std::string CocoGtJson(const data::CocoGroundTruth& gt) {
  nlohmann::json root;
  root["images"] = nlohmann::json::array();
  root["annotations"] = nlohmann::json::array();
  root["categories"] = nlohmann::json::array();
  for (const auto& image : gt.images) {
    root["images"].push_back({{"id", image.id}, {"height", image.height}, {"width", image.width}});
    for (const auto& g : image.objects) {
      root["annotations"].push_back({{"id", g.id},
                                     {"image_id", image.id},
                                     {"category_id", g.category_id},
                                     {"bbox", g.bbox},
                                     {"area", g.area},
                                     {"iscrowd", g.iscrowd ? 1 : 0}});
    }
  }
  for (int64_t k : gt.category_ids) {
    root["categories"].push_back({{"id", k}, {"name", "c" + std::to_string(k)}});
  }
  return root.dump();
}

// A results JSON of `detections` (their area is the box's, as loadRes assigns it).
inline std::string CocoResultsJson(const std::vector<data::CocoDetection>& detections) {
  nlohmann::json root = nlohmann::json::array();
  for (const auto& d : detections) {
    root.push_back({{"image_id", d.image_id},
                    {"category_id", d.category_id},
                    {"bbox", d.bbox},
                    {"score", d.score}});
  }
  return root.dump();
}

}  // namespace psaq::testing
