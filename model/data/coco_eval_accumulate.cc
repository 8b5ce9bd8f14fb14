// COCOeval.accumulate and COCOeval.summarize over per-image records (coco_eval.h), and the
// text table of the 12 numbers.
#include <algorithm>
#include <map>
#include <numeric>
#include <stdexcept>

#include "dist/base/text_table.h"
#include "model/data/coco_eval.h"

namespace psaq::data {
namespace {

constexpr int kT = kCocoIouThresholds;
constexpr int kR = kCocoRecallThresholds;
constexpr int kA = kCocoAreaRanges;
constexpr int kM = kCocoMaxDetsCount;
constexpr int64_t kMaxDet = kCocoMaxDets[kM - 1];

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

}  // namespace

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
