// COCO detection evaluation (box AP and mask AP), with the semantics of
// pycocotools' COCOeval (pycocotools 2.0.8, iouType "bbox" / "segm", default Params):
//
//   const CocoStats s = EvaluateCoco(gt, detections, CocoIouType::kBbox);
//   LOG(INFO) << "\n" << FormatCocoStats(s);   // s.stats[0] is AP@[.5:.95]
//
// The evaluation is split in two steps so that it can be sharded over ranks (quant/
// detection_eval.h does the gather):
//   1. EvaluateCocoImages: per image and category, COCOeval.evaluateImg for every area range --
//      detections sorted by score (descending, stable as numpy's mergesort), the best 100 kept,
//      matched greedily to ground truth at each IoU threshold. The result (CocoImageEval) is what
//      accumulation needs and nothing more, and it serialises to bytes.
//   2. AccumulateCoco + SummarizeCoco: COCOeval.accumulate (precision with its monotone envelope,
//      read at 101 recall thresholds with searchsorted 'left'; recall; scores) and the 12 numbers
//      of COCOeval.summarize. Images are taken in ascending image id whatever order (or rank) the
//      records come from, so the result does not depend on the sharding.
//
// Parameters are pycocotools' defaults (Params.setDetParams), fixed:
//   IoU thresholds   np.linspace(.5, .95, 10), bit for bit (CocoIouThresholds)
//   recall points    np.linspace(0, 1, 101)
//   maxDets          1, 10, 100
//   area ranges      all [0, 1e10], small [0, 32^2], medium [32^2, 96^2], large [96^2, 1e10],
//                    closed at both ends (an area of exactly 32^2 is small AND medium), on the
//                    ground truth's `area` field and on the detection's area (CocoDetection).
//   categories       CocoGroundTruth::category_ids, sorted and deduplicated (np.unique).
//   images           every image of the ground truth, with or without annotations.
//
// Matching rules kept from pycocotools (evaluateImg):
//   - IoU: bbox as maskApi's bbIou, segm as its rleIou (model/data/coco_mask.h BoxIou / Iou).
//   - a crowd ground truth (iscrowd) is "ignored": it never counts as a positive, a detection
//     matched to it is ignored, and it is not used up (several detections may match it); IoU
//     with a crowd region is intersection over the detection's area.
//   - ground truth outside the area range is ignored the same way; unmatched detections outside
//     the range are ignored; ignored ground truth is tried last and only when no regular one
//     matched.
//   - a detection matches the ground truth of highest IoU >= min(threshold, 1 - 1e-10); on equal
//     IoU the later ground truth (in ignore-last order) wins.
//   - quirk: a match to a ground truth whose annotation id is 0 counts as no match (pycocotools
//     stores the matched id and tests it against 0); that ground truth is still used up.
// Detections of a category that is not in category_ids are left out (pycocotools filters them
// by catIds); EvaluateCocoImages counts them.
//
// Undefined numbers (no ground truth in the category / area range) are -1 in precision and
// recall, and a summary number is -1 when every entry it averages is -1, as in pycocotools.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/data/coco_mask.h"

namespace psaq::data {

enum class CocoIouType { kBbox, kSegm };

// "bbox" / "segm".
std::string CocoIouTypeName(CocoIouType type);

// The fixed parameters (see above). T, R, A, M below are these sizes.
inline constexpr int kCocoIouThresholds = 10;      // T
inline constexpr int kCocoRecallThresholds = 101;  // R
inline constexpr int kCocoAreaRanges = 4;          // A: all, small, medium, large
inline constexpr int kCocoMaxDetsCount = 3;        // M
inline constexpr std::array<int64_t, kCocoMaxDetsCount> kCocoMaxDets = {1, 10, 100};
// [lo, hi] per area range, both ends included.
inline constexpr std::array<std::array<double, 2>, kCocoAreaRanges> kCocoAreaRange = {
    {{0.0, 1e10}, {0.0, 1024.0}, {1024.0, 9216.0}, {9216.0, 1e10}}};
inline constexpr std::array<const char*, kCocoAreaRanges> kCocoAreaNames = {"all", "small",
                                                                            "medium", "large"};
// np.linspace(.5, .95, 10) and np.linspace(0, 1, 101), computed as numpy 1.26 computes them
// (i * step + start, the last one set to stop), so an IoU exactly at a threshold compares alike.
const std::array<double, kCocoIouThresholds>& CocoIouThresholds();
const std::array<double, kCocoRecallThresholds>& CocoRecallThresholds();

// One ground-truth annotation.
struct CocoGtObject {
  int64_t id = 0;                // annotation id (see the id-0 quirk above)
  int64_t category_id = 0;       // one of CocoGroundTruth::category_ids
  std::array<double, 4> bbox{};  // x, y, w, h in pixels
  double area = 0;               // the annotation's `area` field: the area ranges are tested on it
  bool iscrowd = false;     // a crowd region: ignored, not used up, IoU over the detection's area
  std::optional<Rle> mask;  // the segmentation as RLE (required for segm, of the image's size)
};

// One image of the ground truth and its annotations, in file order (the order matters for ties).
struct CocoGtImage {
  int64_t id = 0;
  int64_t height = 0;  // the size every mask on the image must have (segm); 0 = unknown: then
  int64_t width = 0;   // all masks on the image must share one size
  std::vector<CocoGtObject> objects;
};

struct CocoGroundTruth {
  std::vector<CocoGtImage> images;    // image ids unique
  std::vector<int64_t> category_ids;  // the categories evaluated (K after sorting)
};

// One detection (a row of a COCO results file).
struct CocoDetection {
  int64_t image_id = 0;
  int64_t category_id = 0;
  std::array<double, 4> bbox{};  // x, y, w, h in pixels
  double score = 0;              // finite
  // The area tested against the area ranges. Unset: bbox w * h, which is what pycocotools'
  // loadRes assigns whenever the results carry boxes (even for segm evaluation).
  std::optional<double> area;
  std::optional<Rle> mask;  // the predicted mask as RLE (required for segm, of the image's size)
};

// What COCOeval.evaluateImg yields for one image and category, for every area range, reduced to
// what accumulate reads.
struct CocoImageEval {
  enum Match : uint8_t { kFalsePositive = 0, kTruePositive = 1, kIgnored = 2 };

  int64_t image_id = 0;
  int64_t category_id = 0;
  // [D] scores of the image's detections of this category, best first (stable), D <= 100.
  std::vector<double> scores;
  // Per area range: ground truth that is not ignored (pycocotools' npig contribution).
  std::array<int64_t, kCocoAreaRanges> num_gt{};
  // [A, T, D] row-major: Match of detection d at IoU threshold t in area range a.
  std::vector<uint8_t> matches;

  uint8_t match(int a, int t, int64_t d) const {
    return matches[(static_cast<size_t>(a) * kCocoIouThresholds + t) * scores.size() + d];
  }
};

// Step 1 for the images `image_ids` (each must be an image of `gt`, no repeats): one record per
// (image, category of gt.category_ids) that has ground truth or detections, ordered by image
// then category. `detections` must lie on these images. `left_out`, when given, receives the
// number of detections left out because their category is not in gt.category_ids.
// Throws std::invalid_argument naming the image / detection (index into `detections`) for: an
// image id not in gt or repeated, a detection on an image not listed, a non-finite score or box,
// a negative box size; for kSegm also a detection or annotation (of an evaluated category)
// without a mask or with a mask whose size is not the image's (pycocotools would give IoU -1).
std::vector<CocoImageEval> EvaluateCocoImages(const CocoGroundTruth& gt,
                                              const std::vector<int64_t>& image_ids,
                                              const std::vector<CocoDetection>& detections,
                                              CocoIouType type, int64_t* left_out = nullptr);

// The ids of every image of gt, in ascending order.
std::vector<int64_t> CocoImageIds(const CocoGroundTruth& gt);

// Records as bytes (native endianness: for ranks of one job) and back. Deserialize throws
// std::runtime_error naming the offset when the bytes are truncated or inconsistent.
std::vector<uint8_t> SerializeCocoImageEvals(const std::vector<CocoImageEval>& evals);
std::vector<CocoImageEval> DeserializeCocoImageEvals(const uint8_t* data, size_t size);

// COCOeval.eval after accumulate().
struct CocoAccumulation {
  std::vector<int64_t> category_ids;  // [K] sorted, unique
  std::vector<double> precision;      // [T, R, K, A, M] row-major; -1: no ground truth
  std::vector<double> recall;         // [T, K, A, M]; -1: no ground truth
  std::vector<double> scores;         // [T, R, K, A, M]; the score at each recall point, -1 / 0
                                      // as pycocotools leaves them

  int64_t num_categories() const { return static_cast<int64_t>(category_ids.size()); }
  double precision_at(int t, int r, int64_t k, int a, int m) const;
  double recall_at(int t, int64_t k, int a, int m) const;
};

// Step 2a over records of any number of images, in any order (typically gathered from every
// rank). Categories are `category_ids` sorted and deduplicated; records of other categories are
// left out. Throws std::invalid_argument when two records have the same image and category, or
// a record is inconsistent (matches.size() != A * T * D, D > 100).
CocoAccumulation AccumulateCoco(const std::vector<CocoImageEval>& evals,
                                const std::vector<int64_t>& category_ids);

// The 12 numbers of COCOeval.summarize (stats[0..11]), -1 where undefined.
struct CocoStats {
  std::array<double, 12> stats{};
  // "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl".
  static const std::array<const char*, 12>& Names();
  CocoIouType iou_type = CocoIouType::kBbox;
  int64_t images = 0;      // images evaluated
  int64_t detections = 0;  // detections evaluated (before the cut to 100 per image and category)
  int64_t left_out = 0;    // detections of categories not evaluated
};

// Step 2b. The means are numpy's (pairwise summation over the entries > -1, in C order).
CocoStats SummarizeCoco(const CocoAccumulation& acc, CocoIouType type);

// Steps 1 and 2 on one process, over every image of gt.
// Throws as EvaluateCocoImages (every detection must lie on an image of gt).
CocoStats EvaluateCoco(const CocoGroundTruth& gt, const std::vector<CocoDetection>& detections,
                       CocoIouType type);

// The 12 numbers as a table in pycocotools' words, one per line (values with 3 decimals, -1.000
// where undefined):
//   metric                  IoU        area    maxDets  value
//   ----------------------  ---------  ------  -------  -----
//   Average Precision (AP)  0.50:0.95  all         100  0.512
//   ...
//   bbox: 5000 images, 36335 detections
// (", N left out (category not evaluated)" added when any).
std::string FormatCocoStats(const CocoStats& stats);

}  // namespace psaq::data
