#include "quant/range_compare.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "dist/base/format.h"
#include "dist/base/text_table.h"

namespace psaq::quant {

double PointRangeComparison::clipped_fraction() const {
  return count == 0 ? 0.0 : static_cast<double>(clipped) / static_cast<double>(count);
}

double PointRangeComparison::sqnr_db() const {
  if (noise == 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal / noise);
}

void AccumulatePoint(PointRangeComparison& point, const ActivationQuantizer& quantizer,
                     const at::Tensor& x) {
  TORCH_CHECK(quantizer.enabled() && quantizer.has_range(),
              "AccumulatePoint: point '", point.name, "' has no calibrated range");
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), "AccumulatePoint: '", point.name,
              "' is not floating point");
  at::NoGradGuard no_grad;
  const auto [lo, hi] = quantizer.range();
  if (point.count == 0) {
    point.calibrated_min = lo;
    point.calibrated_max = hi;
    point.real_min = std::numeric_limits<double>::infinity();
    point.real_max = -std::numeric_limits<double>::infinity();
  }
  if (x.numel() == 0) return;
  // The quantizer's own arithmetic in x's dtype; the sums in float64 so that millions of
  // activations do not lose the small errors.
  const at::Tensor q = quantizer.FakeQuantize(x).to(at::kDouble);
  const at::Tensor xd = x.to(at::kDouble);
  const double mn = xd.min().item<double>();
  const double mx = xd.max().item<double>();
  TORCH_CHECK(std::isfinite(mn) && std::isfinite(mx), "AccumulatePoint: point '", point.name,
              "' holds a non-finite activation");
  point.real_min = std::min(point.real_min, mn);
  point.real_max = std::max(point.real_max, mx);
  point.count += x.numel();
  point.clipped += ((xd < lo) | (xd > hi)).sum().item<int64_t>();
  point.signal += xd.square().sum().item<double>();
  point.noise += (xd - q).square().sum().item<double>();
}

namespace {

// Sees every activation tap of a float forward and folds it into that tap's comparison.
class CompareObserver : public model::TapObserver {
 public:
  CompareObserver(const QuantizedModel& model, std::vector<PointRangeComparison>& points)
      : model_(model), points_(points) {}
  at::Tensor OnTap(int id, const model::TapInfo& info, const at::Tensor& x) override {
    if (info.kind != model::TapKind::kActivation) return x;
    const ActivationQuantizer& quantizer = model_.activation_quantizer(id);
    if (!quantizer.enabled()) return x;
    PointRangeComparison& point = points_[static_cast<size_t>(id)];
    point.name = info.name;
    AccumulatePoint(point, quantizer, x);
    return x;  // the float value flows on: each point is judged on its own
  }

 private:
  const QuantizedModel& model_;
  std::vector<PointRangeComparison>& points_;
};

}  // namespace

std::vector<PointRangeComparison> CompareRanges(QuantizedModel& model,
                                                const std::vector<at::Tensor>& batches) {
  TORCH_CHECK(!batches.empty(), "CompareRanges: no real images");
  at::NoGradGuard no_grad;
  const QuantizedModel::Mode previous = model.mode();
  model.SetMode(QuantizedModel::Mode::kQuantized);  // checks that every range is set
  model.SetMode(QuantizedModel::Mode::kFloat);
  model::TapSet& taps = model.model().taps();
  std::vector<PointRangeComparison> by_tap(taps.taps().size());
  {
    CompareObserver observer(model, by_tap);
    model::ScopedTapObserver attach(taps, &observer,
                                    model::TapMask(model::TapKind::kActivation));
    for (const at::Tensor& batch : batches) model.model().forward(batch);
  }
  model.SetMode(previous);
  std::vector<PointRangeComparison> points;
  for (PointRangeComparison& p : by_tap) {
    if (p.count > 0) points.push_back(std::move(p));
  }
  std::stable_sort(points.begin(), points.end(),
                   [](const PointRangeComparison& a, const PointRangeComparison& b) {
                     const double sa = a.sqnr_db();
                     const double sb = b.sqnr_db();
                     if (std::isnan(sa) != std::isnan(sb)) return std::isnan(sa);
                     return sa < sb;
                   });
  return points;
}

namespace {

std::string Range(double lo, double hi) {
  return "[" + base::FormatFixed(lo, 3) + ", " + base::FormatFixed(hi, 3) + "]";
}

}  // namespace

std::string FormatRangeComparison(const std::vector<PointRangeComparison>& points, int max_rows) {
  base::TextTable table(
      {"rank", "point", "calibrated range", "real range", "real clipped %", "SQNR dB"});
  for (int col : {0, 4, 5}) table.SetAlign(col, base::TextTable::Align::kRight);
  size_t shown = 0;
  for (size_t i = 0; i < points.size(); ++i) {
    if (max_rows > 0 && static_cast<int64_t>(i) >= max_rows) break;
    const PointRangeComparison& p = points[i];
    const double sqnr = p.sqnr_db();
    table.AddRow({std::to_string(i + 1), p.name, Range(p.calibrated_min, p.calibrated_max),
                  Range(p.real_min, p.real_max), base::FormatFixed(100.0 * p.clipped_fraction(), 2),
                  std::isinf(sqnr) ? std::string("inf") : base::FormatFixed(sqnr, 2)});
    ++shown;
  }
  std::string text = table.Render();
  if (shown < points.size()) {
    text += "(" + std::to_string(points.size() - shown) + " less damaged points not shown)\n";
  }
  return text;
}

nlohmann::json RangeComparisonJson(const std::vector<PointRangeComparison>& points) {
  nlohmann::json rows = nlohmann::json::array();
  for (const PointRangeComparison& p : points) {
    const double sqnr = p.sqnr_db();
    rows.push_back({{"point", p.name},
                    {"calibrated_min", p.calibrated_min},
                    {"calibrated_max", p.calibrated_max},
                    {"real_min", p.real_min},
                    {"real_max", p.real_max},
                    {"count", p.count},
                    {"clipped", p.clipped},
                    {"clipped_fraction", p.clipped_fraction()},
                    {"sqnr_db", std::isfinite(sqnr) ? nlohmann::json(sqnr) : nlohmann::json()}});
  }
  return rows;
}

}  // namespace psaq::quant
