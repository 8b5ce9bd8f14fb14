#include "model/data/coco_eval.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "dist/base/text_table.h"

namespace psaq::data {
namespace {

constexpr int kT = kCocoIouThresholds;
constexpr int kR = kCocoRecallThresholds;
constexpr int kA = kCocoAreaRanges;
constexpr int kM = kCocoMaxDetsCount;
constexpr int64_t kMaxDet = kCocoMaxDets[kM - 1];

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

// numpy's pairwise summation (umath loops: blocks of 128 summed with 8 accumulators), so that
// the summary means equal np.mean's to the last bit.
double PairwiseSum(const double* a, size_t n) {
  if (n < 8) {
    double s = 0.0;
    for (size_t i = 0; i < n; ++i) s += a[i];
    return s;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    size_t i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    }
    double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) s += a[i];
    return s;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return PairwiseSum(a, n2) + PairwiseSum(a + n2, n - n2);
}

// np.mean(values); -1 when empty (pycocotools' "no entry > -1"). numpy's reduction hands the
// pairwise sum blocks of its buffer size (8192 elements) and adds the block sums in order.
double NumpyMean(const std::vector<double>& values) {
  if (values.empty()) return -1.0;
  constexpr size_t kNumpyBufferSize = 8192;
  double sum = 0.0;
  for (size_t i = 0; i < values.size(); i += kNumpyBufferSize) {
    sum += PairwiseSum(values.data() + i, std::min(kNumpyBufferSize, values.size() - i));
  }
  return sum / static_cast<double>(values.size());
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

// Little byte writer/reader for the serialised records.
template <typename T>
void Put(std::vector<uint8_t>& out, const T& v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof(T));
}

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  void Read(void* dst, size_t n) {
    if (n > size_ - pos_) {
      throw std::runtime_error("coco_eval: serialized image evaluations truncated at byte " +
                               std::to_string(pos_) + " of " + std::to_string(size_));
    }
    std::memcpy(dst, data_ + pos_, n);
    pos_ += n;
  }
  template <typename T>
  T Get() {
    T v;
    Read(&v, sizeof(T));
    return v;
  }
  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

constexpr uint64_t kMagic = 0x31455643'51415350ull;  // "PSAQCVE1"

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

std::vector<uint8_t> SerializeCocoImageEvals(const std::vector<CocoImageEval>& evals) {
  std::vector<uint8_t> out;
  Put(out, kMagic);
  Put(out, static_cast<uint64_t>(evals.size()));
  for (const CocoImageEval& e : evals) {
    Put(out, e.image_id);
    Put(out, e.category_id);
    Put(out, static_cast<uint64_t>(e.scores.size()));
    for (int64_t n : e.num_gt) Put(out, n);
    for (double s : e.scores) Put(out, s);
    out.insert(out.end(), e.matches.begin(), e.matches.end());
  }
  return out;
}

std::vector<CocoImageEval> DeserializeCocoImageEvals(const uint8_t* data, size_t size) {
  Reader in(data, size);
  if (in.Get<uint64_t>() != kMagic) {
    throw std::runtime_error("coco_eval: serialized image evaluations do not start with the magic");
  }
  const auto count = in.Get<uint64_t>();
  std::vector<CocoImageEval> evals;
  for (uint64_t i = 0; i < count; ++i) {
    CocoImageEval e;
    e.image_id = in.Get<int64_t>();
    e.category_id = in.Get<int64_t>();
    const size_t at = in.pos();
    const auto num_dt = in.Get<uint64_t>();
    if (num_dt > static_cast<uint64_t>(kMaxDet)) {
      throw std::runtime_error(
          "coco_eval: serialized image evaluations: " + std::to_string(num_dt) +
          " detections at byte " + std::to_string(at) + " (at most 100)");
    }
    for (int64_t& n : e.num_gt) n = in.Get<int64_t>();
    e.scores.resize(num_dt);
    in.Read(e.scores.data(), num_dt * sizeof(double));
    e.matches.resize(static_cast<size_t>(kA) * kT * num_dt);
    in.Read(e.matches.data(), e.matches.size());
    for (uint8_t m : e.matches) {
      if (m > CocoImageEval::kIgnored) {
        throw std::runtime_error("coco_eval: serialized image evaluations: bad match value " +
                                 std::to_string(m) + " before byte " + std::to_string(in.pos()));
      }
    }
    evals.push_back(std::move(e));
  }
  if (in.left() != 0) {
    throw std::runtime_error(
        "coco_eval: serialized image evaluations: " + std::to_string(in.left()) +
        " bytes left over after " + std::to_string(count) + " records");
  }
  return evals;
}

double CocoAccumulation::precision_at(int t, int r, int64_t k, int a, int m) const {
  const int64_t K = num_categories();
  return precision[(((static_cast<size_t>(t) * kR + r) * K + k) * kA + a) * kM + m];
}

double CocoAccumulation::recall_at(int t, int64_t k, int a, int m) const {
  const int64_t K = num_categories();
  return recall[((static_cast<size_t>(t) * K + k) * kA + a) * kM + m];
}

CocoAccumulation AccumulateCoco(const std::vector<CocoImageEval>& evals,
                                const std::vector<int64_t>& category_ids) {
  CocoAccumulation acc;
  acc.category_ids = category_ids;
  std::sort(acc.category_ids.begin(), acc.category_ids.end());
  acc.category_ids.erase(std::unique(acc.category_ids.begin(), acc.category_ids.end()),
                         acc.category_ids.end());
  const int64_t K = acc.num_categories();
  acc.precision.assign(static_cast<size_t>(kT) * kR * K * kA * kM, -1.0);
  acc.recall.assign(static_cast<size_t>(kT) * K * kA * kM, -1.0);
  acc.scores.assign(acc.precision.size(), -1.0);

  // The records of each category in ascending image id: pycocotools concatenates the images in
  // that order, which decides ties between equal scores of different images.
  std::map<int64_t, std::map<int64_t, const CocoImageEval*>> by_category;
  for (const CocoImageEval& e : evals) {
    const size_t num_dt = e.scores.size();
    if (num_dt > static_cast<size_t>(kMaxDet) ||
        e.matches.size() != static_cast<size_t>(kA) * kT * num_dt) {
      throw std::invalid_argument("AccumulateCoco: inconsistent record for image " +
                                  std::to_string(e.image_id) + ", category " +
                                  std::to_string(e.category_id));
    }
    if (!std::binary_search(acc.category_ids.begin(), acc.category_ids.end(), e.category_id)) {
      continue;
    }
    if (!by_category[e.category_id].emplace(e.image_id, &e).second) {
      throw std::invalid_argument("AccumulateCoco: image " + std::to_string(e.image_id) +
                                  ", category " + std::to_string(e.category_id) +
                                  " evaluated twice");
    }
  }

  const auto& rec_thrs = CocoRecallThresholds();
  for (int64_t k = 0; k < K; ++k) {
    const auto found = by_category.find(acc.category_ids[k]);
    if (found == by_category.end()) continue;  // no record: stays -1
    const auto& records = found->second;
    for (int a = 0; a < kA; ++a) {
      int64_t npig = 0;
      for (const auto& [image_id, e] : records) npig += e->num_gt[a];
      for (int m = 0; m < kM; ++m) {
        if (npig == 0) continue;
        const size_t max_det = static_cast<size_t>(kCocoMaxDets[m]);
        // Concatenate each image's best max_det detections, then sort stably by score.
        std::vector<double> scores;
        std::vector<std::pair<const CocoImageEval*, size_t>> where;
        for (const auto& [image_id, e] : records) {
          for (size_t d = 0; d < std::min(max_det, e->scores.size()); ++d) {
            scores.push_back(e->scores[d]);
            where.emplace_back(e, d);
          }
        }
        std::vector<size_t> order(scores.size());
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(),
                         [&](size_t x, size_t y) { return scores[x] > scores[y]; });
        const size_t nd = order.size();
        for (int t = 0; t < kT; ++t) {
          std::vector<double> rc(nd), pr(nd);
          double tp = 0, fp = 0;
          for (size_t i = 0; i < nd; ++i) {
            const auto& [e, d] = where[order[i]];
            const uint8_t match = e->match(a, t, static_cast<int64_t>(d));
            if (match == CocoImageEval::kTruePositive) tp += 1;
            if (match == CocoImageEval::kFalsePositive) fp += 1;
            rc[i] = tp / static_cast<double>(npig);
            pr[i] = tp / (fp + tp + 2.220446049250313e-16);  // np.spacing(1)
          }
          acc.recall[((static_cast<size_t>(t) * K + k) * kA + a) * kM + m] = nd ? rc[nd - 1] : 0;
          // The precision envelope: make it non-increasing from the right.
          for (size_t i = nd; i-- > 1;) {
            if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
          }
          for (int r = 0; r < kR; ++r) {
            // searchsorted(rc, thr, 'left'): the first point whose recall reaches thr. Past
            // the end pycocotools' loop stops (its try/except) and leaves 0.
            const size_t i = std::lower_bound(rc.begin(), rc.end(), rec_thrs[r]) - rc.begin();
            const size_t at = (((static_cast<size_t>(t) * kR + r) * K + k) * kA + a) * kM + m;
            if (i < nd) {
              acc.precision[at] = pr[i];
              acc.scores[at] = scores[order[i]];
            } else {
              for (int r2 = r; r2 < kR; ++r2) {
                const size_t at2 = (((static_cast<size_t>(t) * kR + r2) * K + k) * kA + a) * kM + m;
                acc.precision[at2] = 0;
                acc.scores[at2] = 0;
              }
              break;
            }
          }
        }
      }
    }
  }
  return acc;
}

const std::array<const char*, 12>& CocoStats::Names() {
  static const std::array<const char*, 12> names = {"AP",  "AP50", "AP75",  "APs", "APm", "APl",
                                                    "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"};
  return names;
}

namespace {

// One line of COCOeval.summarize: average precision (ap) or recall at one IoU threshold (or
// all: iou < 0), one area range, one maxDets.
struct SummaryEntry {
  bool ap;
  double iou;  // < 0: all thresholds
  int area;
  int max_det_index;
};

constexpr std::array<SummaryEntry, 12> kSummary = {{{true, -1, 0, 2},
                                                    {true, 0.5, 0, 2},
                                                    {true, 0.75, 0, 2},
                                                    {true, -1, 1, 2},
                                                    {true, -1, 2, 2},
                                                    {true, -1, 3, 2},
                                                    {false, -1, 0, 0},
                                                    {false, -1, 0, 1},
                                                    {false, -1, 0, 2},
                                                    {false, -1, 1, 2},
                                                    {false, -1, 2, 2},
                                                    {false, -1, 3, 2}}};

}  // namespace

CocoStats SummarizeCoco(const CocoAccumulation& acc, CocoIouType type) {
  CocoStats out;
  out.iou_type = type;
  const int64_t K = acc.num_categories();
  const auto& thresholds = CocoIouThresholds();
  for (size_t s = 0; s < kSummary.size(); ++s) {
    const SummaryEntry& e = kSummary[s];
    // The thresholds selected: pycocotools' np.where(iouThr == p.iouThrs) (exact equality).
    std::vector<int> ts;
    for (int t = 0; t < kT; ++t) {
      if (e.iou < 0 || thresholds[t] == e.iou) ts.push_back(t);
    }
    // The entries > -1 in C order of the selected sub-array: [T, R, K] or [T, K].
    std::vector<double> values;
    for (int t : ts) {
      if (e.ap) {
        for (int r = 0; r < kR; ++r) {
          for (int64_t k = 0; k < K; ++k) {
            const double v = acc.precision_at(t, r, k, e.area, e.max_det_index);
            if (v > -1) values.push_back(v);
          }
        }
      } else {
        for (int64_t k = 0; k < K; ++k) {
          const double v = acc.recall_at(t, k, e.area, e.max_det_index);
          if (v > -1) values.push_back(v);
        }
      }
    }
    out.stats[s] = NumpyMean(values);
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

std::string FormatCocoStats(const CocoStats& stats) {
  base::TextTable table({"metric", "IoU", "area", "maxDets", "value"});
  table.SetAlign(3, base::TextTable::Align::kRight);
  table.SetAlign(4, base::TextTable::Align::kRight);
  for (size_t s = 0; s < kSummary.size(); ++s) {
    const SummaryEntry& e = kSummary[s];
    table.AddRow({std::string(e.ap ? "Average Precision (AP)" : "Average Recall    (AR)"),
                  e.iou < 0 ? "0.50:0.95" : base::FormatFixed(e.iou, 2), kCocoAreaNames[e.area],
                  std::to_string(kCocoMaxDets[e.max_det_index]),
                  base::FormatFixed(stats.stats[s], 3)});
  }
  std::string text = table.Render();
  text += CocoIouTypeName(stats.iou_type) + ": " + std::to_string(stats.images) + " images, " +
          std::to_string(stats.detections) + " detections";
  if (stats.left_out > 0) {
    text += ", " + std::to_string(stats.left_out) + " left out (category not evaluated)";
  }
  text += "\n";
  return text;
}

}  // namespace psaq::data
