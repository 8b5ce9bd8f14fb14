// COCOeval.evaluateImg (per image and category) and the one-process EvaluateCoco; accumulation
// and the summary are in coco_eval_accumulate.cc, the records' bytes in coco_eval_records.cc.
#include "model/data/coco_eval.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <stdexcept>
#include <unordered_map>

namespace psaq::data {
namespace {

constexpr int kT = kCocoIouThresholds;
constexpr int kA = kCocoAreaRanges;
constexpr int64_t kMaxDet = kCocoMaxDets[kCocoMaxDetsCount - 1];

// np.linspace(start, stop, num) as numpy 1.26 evaluates it: arange * step + start, endpoint
// pinned to stop. The IoU thresholds are compared with computed IoUs, so the bits matter.
template <size_t N>
std::array<double, N> Linspace(double start, double stop) {
  std::array<double, N> out{};
  const double step = (stop - start) / static_cast<double>(N - 1);
  for (size_t i = 0; i < N; ++i) out[i] = static_cast<double>(i) * step + start;
  out[N - 1] = stop;
  return out;
}

bool Outside(double area, int a) {
  return area < kCocoAreaRange[a][0] || area > kCocoAreaRange[a][1];
}

// COCOeval.evaluateImg for one image and category, all area ranges. `gts` in annotation order,
// `dts` in results order.
CocoImageEval EvaluateOne(int64_t image_id, int64_t category_id,
                          const std::vector<const CocoGtObject*>& gts,
                          const std::vector<const CocoDetection*>& dts, CocoIouType type) {
  CocoImageEval out;
  out.image_id = image_id;
  out.category_id = category_id;
  // Best score first; equal scores keep results order (numpy's stable mergesort); the best 100.
  std::vector<size_t> order(dts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return dts[a]->score > dts[b]->score; });
  if (static_cast<int64_t>(order.size()) > kMaxDet) order.resize(kMaxDet);
  const size_t num_dt = order.size();
  const size_t num_gt = gts.size();

  std::vector<double> dt_area;
  for (size_t d : order) {
    out.scores.push_back(dts[d]->score);
    const auto& b = dts[d]->bbox;
    dt_area.push_back(dts[d]->area.has_value() ? *dts[d]->area : b[2] * b[3]);
  }
  // [D, G] row-major; pycocotools skips matching when either side is empty.
  std::vector<double> ious;
  if (num_dt > 0 && num_gt > 0) {
    std::vector<bool> crowd;
    for (const CocoGtObject* g : gts) crowd.push_back(g->iscrowd);
    at::Tensor iou;
    if (type == CocoIouType::kSegm) {
      std::vector<Rle> dt_masks, gt_masks;
      for (size_t d : order) dt_masks.push_back(*dts[d]->mask);
      for (const CocoGtObject* g : gts) gt_masks.push_back(*g->mask);
      iou = Iou(dt_masks, gt_masks, crowd);
    } else {
      at::Tensor dt_boxes = at::empty({static_cast<int64_t>(num_dt), 4}, at::kDouble);
      at::Tensor gt_boxes = at::empty({static_cast<int64_t>(num_gt), 4}, at::kDouble);
      for (size_t d = 0; d < num_dt; ++d) {
        std::copy_n(dts[order[d]]->bbox.begin(), 4, dt_boxes.data_ptr<double>() + 4 * d);
      }
      for (size_t g = 0; g < num_gt; ++g) {
        std::copy_n(gts[g]->bbox.begin(), 4, gt_boxes.data_ptr<double>() + 4 * g);
      }
      iou = BoxIou(dt_boxes, gt_boxes, crowd);
    }
    iou = iou.contiguous();
    ious.assign(iou.data_ptr<double>(), iou.data_ptr<double>() + iou.numel());
  }

  const auto& thresholds = CocoIouThresholds();
  out.matches.assign(static_cast<size_t>(kA) * kT * num_dt, CocoImageEval::kFalsePositive);
  for (int a = 0; a < kA; ++a) {
    // Ignored ground truth (crowd or outside the range) goes last, order otherwise kept.
    std::vector<bool> gt_ignore(num_gt);
    for (size_t g = 0; g < num_gt; ++g) gt_ignore[g] = gts[g]->iscrowd || Outside(gts[g]->area, a);
    std::vector<size_t> gt_order(num_gt);
    std::iota(gt_order.begin(), gt_order.end(), 0);
    std::stable_partition(gt_order.begin(), gt_order.end(),
                          [&](size_t g) { return !gt_ignore[g]; });
    out.num_gt[a] = std::count(gt_ignore.begin(), gt_ignore.end(), false);

    for (int t = 0; t < kT; ++t) {
      std::vector<bool> gt_used(num_gt, false);  // by position in gt_order
      for (size_t d = 0; d < num_dt; ++d) {
        double best = std::min(thresholds[t], 1 - 1e-10);
        int64_t m = -1;  // position in gt_order
        for (size_t p = 0; p < num_gt; ++p) {
          const size_t g = gt_order[p];
          if (gt_used[p] && !gts[g]->iscrowd) continue;
          // Matched a regular ground truth already: ignored ones come after, stop.
          if (m > -1 && !gt_ignore[gt_order[m]] && gt_ignore[g]) break;
          const double iou = ious[d * num_gt + g];
          if (iou < best) continue;
          best = iou;
          m = static_cast<int64_t>(p);
        }
        bool ignored = false;
        bool matched = false;
        if (m > -1) {
          const size_t g = gt_order[m];
          ignored = gt_ignore[g];
          matched = gts[g]->id != 0;  // pycocotools tests the stored id against 0
          gt_used[m] = true;
        }
        if (!matched && Outside(dt_area[d], a)) ignored = true;
        out.matches[(static_cast<size_t>(a) * kT + t) * num_dt + d] =
            ignored ? CocoImageEval::kIgnored
                    : (matched ? CocoImageEval::kTruePositive : CocoImageEval::kFalsePositive);
      }
    }
  }
  return out;
}

// segm: every mask that takes part has the image's size (or, size unknown, one size).
void CheckMasks(const CocoGtImage& image, const std::vector<const CocoGtObject*>& gts,
                const std::vector<std::pair<size_t, const CocoDetection*>>& dts) {
  int64_t height = image.height, width = image.width;
  const auto check = [&](const std::optional<Rle>& mask, const std::string& what) {
    if (!mask.has_value()) {
      throw std::invalid_argument("coco_eval: segm evaluation: " + what + " has no mask");
    }
    if (height == 0 && width == 0) {
      height = mask->height;
      width = mask->width;
    }
    if (mask->height != height || mask->width != width) {
      throw std::invalid_argument("coco_eval: segm evaluation: " + what + " has a " +
                                  std::to_string(mask->height) + "x" + std::to_string(mask->width) +
                                  " mask, the image is " + std::to_string(height) + "x" +
                                  std::to_string(width));
    }
  };
  for (const CocoGtObject* g : gts) {
    check(g->mask, "annotation " + std::to_string(g->id) + " of image " + std::to_string(image.id));
  }
  for (const auto& [index, d] : dts) {
    check(d->mask,
          "detection " + std::to_string(index) + " (image " + std::to_string(image.id) + ")");
  }
}

void CheckDetection(const CocoDetection& d, size_t index) {
  const auto& b = d.bbox;
  const bool finite = std::isfinite(d.score) && std::isfinite(b[0]) && std::isfinite(b[1]) &&
                      std::isfinite(b[2]) && std::isfinite(b[3]) &&
                      (!d.area.has_value() || std::isfinite(*d.area));
  if (!finite) {
    throw std::invalid_argument("coco_eval: detection " + std::to_string(index) + " (image " +
                                std::to_string(d.image_id) +
                                ") has a non-finite score, box or area");
  }
  if (b[2] < 0 || b[3] < 0) {
    throw std::invalid_argument("coco_eval: detection " + std::to_string(index) + " (image " +
                                std::to_string(d.image_id) +
                                ") has a negative box width or height");
  }
}

}  // namespace

std::string CocoIouTypeName(CocoIouType type) {
  return type == CocoIouType::kSegm ? "segm" : "bbox";
}

const std::array<double, kCocoIouThresholds>& CocoIouThresholds() {
  static const auto values = Linspace<kCocoIouThresholds>(0.5, 0.95);
  return values;
}

const std::array<double, kCocoRecallThresholds>& CocoRecallThresholds() {
  static const auto values = Linspace<kCocoRecallThresholds>(0.0, 1.0);
  return values;
}

std::vector<int64_t> CocoImageIds(const CocoGroundTruth& gt) {
  std::vector<int64_t> ids;
  for (const CocoGtImage& image : gt.images) ids.push_back(image.id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<CocoImageEval> EvaluateCocoImages(const CocoGroundTruth& gt,
                                              const std::vector<int64_t>& image_ids,
                                              const std::vector<CocoDetection>& detections,
                                              CocoIouType type, int64_t* left_out) {
  std::unordered_map<int64_t, const CocoGtImage*> by_id;
  for (const CocoGtImage& image : gt.images) by_id[image.id] = &image;
  std::map<int64_t, const CocoGtImage*> selected;  // ascending image id
  for (int64_t id : image_ids) {
    const auto it = by_id.find(id);
    if (it == by_id.end()) {
      throw std::invalid_argument("coco_eval: image " + std::to_string(id) +
                                  " is not an image of the ground truth");
    }
    if (!selected.emplace(id, it->second).second) {
      throw std::invalid_argument("coco_eval: image " + std::to_string(id) + " listed twice");
    }
  }
  const std::set<int64_t> categories(gt.category_ids.begin(), gt.category_ids.end());
  // Detections per image, in results order.
  std::unordered_map<int64_t, std::vector<std::pair<size_t, const CocoDetection*>>> dets_of;
  int64_t skipped = 0;
  for (size_t i = 0; i < detections.size(); ++i) {
    const CocoDetection& d = detections[i];
    if (selected.count(d.image_id) == 0) {
      throw std::invalid_argument("coco_eval: detection " + std::to_string(i) + " is on image " +
                                  std::to_string(d.image_id) +
                                  (by_id.count(d.image_id)
                                       ? ", which is not among the images evaluated here"
                                       : ", which is not an image of the ground truth"));
    }
    CheckDetection(d, i);
    if (categories.count(d.category_id) == 0) {
      ++skipped;
      continue;
    }
    dets_of[d.image_id].emplace_back(i, &d);
  }
  if (left_out != nullptr) *left_out = skipped;

  std::vector<CocoImageEval> out;
  for (const auto& [image_id, image] : selected) {
    std::map<int64_t,
             std::pair<std::vector<const CocoGtObject*>, std::vector<const CocoDetection*>>>
        per_category;
    std::vector<const CocoGtObject*> evaluated_gts;
    for (const CocoGtObject& g : image->objects) {
      if (categories.count(g.category_id) == 0) continue;
      per_category[g.category_id].first.push_back(&g);
      evaluated_gts.push_back(&g);
    }
    const auto& image_dets = dets_of[image_id];
    if (type == CocoIouType::kSegm) CheckMasks(*image, evaluated_gts, image_dets);
    for (const auto& [index, d] : image_dets) per_category[d->category_id].second.push_back(d);
    for (const auto& [category_id, lists] : per_category) {
      out.push_back(EvaluateOne(image_id, category_id, lists.first, lists.second, type));
    }
  }
  return out;
}

CocoStats EvaluateCoco(const CocoGroundTruth& gt, const std::vector<CocoDetection>& detections,
                       CocoIouType type) {
  const std::vector<int64_t> image_ids = CocoImageIds(gt);
  int64_t left_out = 0;
  const std::vector<CocoImageEval> evals =
      EvaluateCocoImages(gt, image_ids, detections, type, &left_out);
  CocoStats stats = SummarizeCoco(AccumulateCoco(evals, gt.category_ids), type);
  stats.images = static_cast<int64_t>(image_ids.size());
  stats.left_out = left_out;
  stats.detections = static_cast<int64_t>(detections.size()) - left_out;
  return stats;
}

}  // namespace psaq::data
