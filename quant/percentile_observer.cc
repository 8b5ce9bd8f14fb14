#include "quant/percentile_observer.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "quant/activation_quantizer.h"
#include "quant/log_sqrt2_quantizer.h"
#include "quant/uniform.h"

namespace psaq::quant {
namespace {

// Squared error of quantizing `centers` (float64 [bins]) weighted by `counts` (float64 [bins]).
double WeightedError(const at::Tensor& counts, const at::Tensor& centers, const at::Tensor& xq) {
  return (counts * (centers - xq).square()).sum().item<double>();
}

}  // namespace

double HistogramPercentile(const at::Tensor& counts, double lo, double hi, double p) {
  TORCH_CHECK(counts.dim() == 1 && counts.numel() > 0 && counts.scalar_type() == at::kDouble,
              "HistogramPercentile: counts must be float64 [bins], got ", counts.scalar_type(),
              " ", counts.sizes());
  TORCH_CHECK(p >= 0 && p <= 1 && lo <= hi, "HistogramPercentile: p = ", p, ", range [", lo,
              ", ", hi, "]");
  const at::Tensor c = counts.cpu().contiguous();
  const double* n = c.data_ptr<double>();
  const int64_t bins = c.numel();
  double total = 0;
  for (int64_t j = 0; j < bins; ++j) total += n[j];
  TORCH_CHECK(total > 0, "HistogramPercentile: empty histogram");
  const double target = p * total;
  const double width = (hi - lo) / static_cast<double>(bins);
  double below = 0;  // mass of the bins before j
  int64_t last = 0;  // the last non-empty bin
  for (int64_t j = 0; j < bins; ++j) {
    if (n[j] <= 0) continue;
    last = j;
    if (below + n[j] >= target) {
      const double frac = std::clamp((target - below) / n[j], 0.0, 1.0);
      return std::clamp(lo + width * (static_cast<double>(j) + frac), lo, hi);
    }
    below += n[j];
  }
  return std::min(hi, lo + width * static_cast<double>(last + 1));  // round-off in the sum
}

const std::vector<double>& PercentileObserver::MseTails() {
  static const std::vector<double> tails = [] {
    std::vector<double> t = {0.0};
    for (int k = 0; k < kMseLogTails; ++k) {
      t.push_back(std::pow(10.0, kMseTailLow + (kMseTailHigh - kMseTailLow) * k /
                                                   static_cast<double>(kMseLogTails - 1)));
    }
    return t;
  }();
  return tails;
}

PercentileObserver::PercentileObserver(int64_t channels, int bits, ActivationGrid grid,
                                       ObserverKind kind)
    : kind_(kind),
      channels_(channels),
      bits_(bits),
      grid_(grid),
      bins_(channels == 1 ? kTensorBins : kChannelBins),
      extremes_(std::max<int64_t>(channels, 1)) {
  TORCH_CHECK(kind == ObserverKind::kPercentile || kind == ObserverKind::kMse,
              "percentile observer: kind must be percentile or mse, got ", ObserverKindName(kind));
  TORCH_CHECK(channels >= 1, "percentile observer: channels must be >= 1, got ", channels);
  TORCH_CHECK(bits >= kMinBits && bits <= kMaxBits, "percentile observer: bits must be ",
              kMinBits, "..", kMaxBits, ", got ", bits);
  TORCH_CHECK(grid == ActivationGrid::kUniform || channels == 1,
              "percentile observer: a log-sqrt(2) grid is per tensor (channels = 1)");
}

void PercentileObserver::BeginPass(int pass) {
  TORCH_CHECK(pass >= 0 && pass < passes(), "percentile observer: no pass ", pass);
  if (pass == 0) {
    Reset();
    return;
  }
  if (!extremes_.initialized()) return;  // nothing to histogram: calibration reports the tap
  pass_ = 1;
  counts_ = at::zeros({channels_, bins_}, at::kDouble);
  searched_ = false;
}

void PercentileObserver::Observe(const at::Tensor& x) {
  TORCH_CHECK(x.is_floating_point(), "percentile observer: floating tensor expected, got ",
              x.scalar_type());
  TORCH_CHECK(channels_ == 1 || (x.dim() >= 1 && x.size(-1) == channels_),
              "percentile observer: expected [..., ", channels_, "], got ", x.sizes());
  if (x.numel() == 0) return;
  at::NoGradGuard no_grad;
  const at::Tensor v = x.detach().reshape({-1, channels_});
  if (pass_ == 0) {
    extremes_.Observe(v);
    return;
  }
  // Pass 1: bin index per element, offset by its channel's row, one bincount for all channels.
  const auto options = at::TensorOptions().dtype(v.scalar_type()).device(v.device());
  const at::Tensor lo = extremes_.channel_min().to(options);
  const at::Tensor hi = extremes_.channel_max().to(options);
  // A constant channel (hi = lo) puts all its values in bin 0.
  const at::Tensor width = ((hi - lo) / static_cast<double>(bins_)).clamp_min(1e-30);
  const at::Tensor bin =
      at::floor((v - lo) / width).clamp(0, static_cast<double>(bins_ - 1)).to(at::kLong);
  const at::Tensor row = at::arange(channels_, options.dtype(at::kLong)) * bins_;
  const at::Tensor flat = (bin + row).reshape({-1});
  counts_ += at::bincount(flat, {}, channels_ * bins_).to(at::kDouble).cpu().view(
      {channels_, bins_});
  searched_ = false;
}

void PercentileObserver::Reset() {
  pass_ = 0;
  extremes_.Reset();
  counts_ = at::Tensor();
  searched_ = false;
}

bool PercentileObserver::initialized() const { return extremes_.initialized(); }

int64_t PercentileObserver::state_size() const {
  return pass_ == 0 ? extremes_.state_size() : channels_ * bins_;
}

dist::ReduceOp PercentileObserver::merge_op() const {
  return pass_ == 0 ? extremes_.merge_op() : dist::ReduceOp::kSum;
}

at::Tensor PercentileObserver::state() const {
  return pass_ == 0 ? extremes_.state() : counts_.reshape({-1}).clone();
}

void PercentileObserver::set_state(const at::Tensor& state) {
  if (pass_ == 0) {
    extremes_.set_state(state);
    return;
  }
  TORCH_CHECK(state.scalar_type() == at::kDouble && state.numel() == channels_ * bins_,
              "percentile observer histogram state must be float64 [", channels_ * bins_,
              "], got ", state.scalar_type(), " ", state.sizes());
  counts_ = state.cpu().reshape({channels_, bins_}).clone();
  searched_ = false;
}

void PercentileObserver::Search() const {
  if (searched_) return;
  const at::Tensor lo = extremes_.channel_min();
  const at::Tensor hi = extremes_.channel_max();
  searched_min_ = lo.clone();
  searched_max_ = hi.clone();
  const double qmax = static_cast<double>(AsymmetricQMax(bits_));
  // A log grid's range is [0, Δ]; a uniform one's the two-sided percentiles.
  const bool log_grid = grid_ == ActivationGrid::kLogSqrt2;
  at::NoGradGuard no_grad;
  for (int64_t c = 0; c < channels_; ++c) {
    const at::Tensor counts = counts_[c];
    if (counts.sum().item<double>() <= 0) continue;  // this rank's own, unmerged, empty state
    const double l = lo[c].item<double>();
    const double h = hi[c].item<double>();
    const double width = (h - l) / static_cast<double>(bins_);
    const at::Tensor centers =
        l + (at::arange(bins_, at::kDouble) + 0.5) * width;  // float64 [bins]
    // The squared error of the tap's grid on [cand_lo, cand_hi].
    auto error_of = [&](double cand_lo, double cand_hi) {
      at::Tensor xq;
      if (log_grid) {
        LogSqrt2Quantizer q(bits_);
        q.SetRange(0, cand_hi);
        xq = q.FakeQuantize(centers.clamp_min(0));
      } else if (channels_ == 1) {
        // The tap's own per-tensor grid (zero point clamped to the codes).
        ActivationQuantizer q(bits_);
        q.SetRange(cand_lo, cand_hi);
        xq = FakeQuantizeNoGrad(centers, q.Grid(at::kDouble));
      } else {
        // The grid RepQ's fold gives this channel (quant/repq_fold.h): zero point not clamped.
        const double s = std::max((cand_hi - cand_lo) / qmax, static_cast<double>(kScaleEps));
        UniformGrid grid;
        grid.scale = at::scalar_tensor(s, at::kDouble);
        grid.zero_point = at::scalar_tensor(std::nearbyint(-cand_lo / s), at::kDouble);
        grid.qmin = 0;
        grid.qmax = AsymmetricQMax(bits_);
        xq = FakeQuantizeNoGrad(centers, grid);
      }
      return WeightedError(counts, centers, xq);
    };
    double best = std::numeric_limits<double>::infinity();
    double best_lo = l, best_hi = h;
    for (double p : kPercentiles) {
      const double top = HistogramPercentile(counts, l, h, p);
      const double cand_lo = log_grid ? 0.0 : HistogramPercentile(counts, l, h, 1 - p);
      const double cand_hi = log_grid ? std::max(top, static_cast<double>(kScaleEps)) : top;
      const double error = error_of(cand_lo, cand_hi);
      if (error < best) {  // strictly better: ties keep the earlier percentile, as RepQ
        best = error;
        best_lo = cand_lo;
        best_hi = cand_hi;
      }
    }
    if (kind_ == ObserverKind::kMse) {
      // Coordinate descent from RepQ's choice over the tail masses: the upper end with the lower
      // fixed, then the lower end with the upper fixed (a log grid has no lower end), twice.
      // Each end's candidates are read from the histogram once, before the rounds.
      std::vector<double> uppers, lowers;
      for (double t : MseTails()) {
        const double top = HistogramPercentile(counts, l, h, 1 - t);
        uppers.push_back(log_grid ? std::max(top, static_cast<double>(kScaleEps)) : top);
        if (!log_grid) lowers.push_back(HistogramPercentile(counts, l, h, t));
      }
      for (int round = 0; round < kMseRounds; ++round) {
        for (double cand_hi : uppers) {
          if (!log_grid && cand_hi <= best_lo) continue;
          const double error = error_of(best_lo, cand_hi);
          if (error < best) {
            best = error;
            best_hi = cand_hi;
          }
        }
        if (log_grid) break;
        for (double cand_lo : lowers) {
          if (cand_lo >= best_hi) continue;
          const double error = error_of(cand_lo, best_hi);
          if (error < best) {
            best = error;
            best_lo = cand_lo;
          }
        }
      }
    }
    searched_min_[c] = best_lo;
    searched_max_[c] = best_hi;
  }
  searched_ = true;
}

std::pair<double, double> PercentileObserver::Range() const {
  const at::Tensor lo = channel_min();
  const at::Tensor hi = channel_max();
  return {lo.min().item<double>(), hi.max().item<double>()};
}

at::Tensor PercentileObserver::channel_min() const {
  TORCH_CHECK(initialized(), "percentile observer: nothing observed yet");
  if (pass_ == 0) return extremes_.channel_min();
  Search();
  return searched_min_.clone();
}

at::Tensor PercentileObserver::channel_max() const {
  TORCH_CHECK(initialized(), "percentile observer: nothing observed yet");
  if (pass_ == 0) return extremes_.channel_max();
  Search();
  return searched_max_.clone();
}

}  // namespace psaq::quant
