// RepQ-ViT's activation range search (zkkli/RepQ-ViT quant/quantizer.py,
// UniformQuantizer.init_quantization_scale and LogSqrt2Quantizer.init_quantization_scale): of the
// ranges given by the 0.999, 0.9999 and 0.99999 percentiles, the one whose grid quantizes the
// calibration activations with the least squared error. ObserverKind::kPercentile
// (quant/range_observer.h), `psaq quantize --act_observer=percentile`.
//
// A percentile does not merge over ranks the way a min/max does, so the observer works in two
// passes over the same calibration batches (quant/calibration.h runs them):
//   pass 0: per-channel min_c and max_c, state [-min_0 .. -min_{C-1}, max_0 .. max_{C-1}], merged
//           with kMax (the ChannelMinMaxObserver state);
//   pass 1: a histogram per channel of kBins equal bins over the merged [min_c, max_c], state the
//           counts [C * kBins], merged with kSum.
// Both states are the same on every rank after their merge, whatever the sharding, so the
// searched range is too. The search reads the histogram: a percentile is the value at which the
// cumulative count reaches p * total, interpolated linearly inside its bin (RepQ's torch.quantile
// interpolates between sorted values: the two agree to within one bin width, range / kBins), and
// a candidate's error is sum over bins of count * (center - Q(center))^2, with Q the very
// quantizer the tap will use (ActivationQuantizer or LogSqrt2Quantizer at `bits`, on float64
// bin centers). Candidates are tried in RepQ's order and a later one must be strictly better.
// Uniform grids: candidate [percentile(1 - p), percentile(p)]; log-sqrt(2) grids: Δ =
// percentile(p) with the range [0, Δ] (RepQ's log quantizer has no minimum).
//
// channels = 1 is the per-tensor search (RepQ's activations), over every element; channels = C
// watches [..., C] and searches each channel on its own (RepQ's channel-wise post-LayerNorm
// ranges before the scale reparameterisation, quant/repq_fold.h).
// Range() is the searched per-tensor range (channels = 1) or the lowest searched channel minimum
// to the highest maximum; before pass 1 has been observed it is the pass-0 min/max.
//
// ObserverKind::kMse (`--act_observer=mse`, psaq's, not RepQ-ViT's) continues from RepQ's choice
// on the same histogram: a coordinate descent over the tail masses MseTails() (0, and 49 masses
// spaced evenly in log10 from 1e-7 to 1e-1). A round tries every upper end percentile(1 - t) with
// the lower end fixed, then every lower end percentile(t) with the upper end fixed (a log grid
// has only the upper end); kMseRounds rounds, each candidate scored as above and kept only when
// strictly better. Its histogram error is thus never above the percentile search's, and the
// ranges merge over ranks the same way. It may clip up to 10% of a tail where RepQ's candidates
// clip at most 0.1%. Measured on the shipped teachers it is no better than the percentile search
// with real images and worse with synthetic samples (docs/quantizers.md).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "quant/channel_range_observer.h"
#include "quant/range_observer.h"

namespace psaq::quant {

class PercentileObserver : public RangeObserver, public ChannelRangeSource {
 public:
  // RepQ's candidates, tried in this order.
  static constexpr double kPercentiles[] = {0.999, 0.9999, 0.99999};
  // Histogram bins per channel: many for one per-tensor histogram, whose range an outlier may
  // stretch to 1000x the bulk's (the bulk still spans about 16 bins), fewer for each of C
  // channels (a post-LayerNorm point of ImageNet Swin-T's third stage has C = 384 of them).
  // States: 128 KiB per tensor, 4 KiB per channel.
  static constexpr int64_t kTensorBins = 16384;
  static constexpr int64_t kChannelBins = 512;

  // kMse's tail masses: 0 and kMseLogTails masses 10^kMseTailLow .. 10^kMseTailHigh.
  static constexpr int kMseLogTails = 49;
  static constexpr double kMseTailLow = -7.0;
  static constexpr double kMseTailHigh = -1.0;
  static constexpr int kMseRounds = 2;
  // The candidate tail masses of kMse, in the order tried.
  static const std::vector<double>& MseTails();

  // REQUIRES: kind is kPercentile or kMse, channels >= 1 and 2 <= bits <= 8 (TORCH_CHECK).
  PercentileObserver(int64_t channels, int bits, ActivationGrid grid,
                     ObserverKind kind = ObserverKind::kPercentile);

  ObserverKind kind() const override { return kind_; }
  int passes() const override { return 2; }
  // Pass 1 starts the histograms on the ranges observed (and merged) in pass 0. A channel that
  // saw nothing stays in pass 0 (its calibration then fails for it, as with a min/max).
  void BeginPass(int pass) override;
  // x: floating; any shape when channels = 1, [..., C] otherwise (TORCH_CHECK). Pass 0 throws
  // c10::Error for a non-finite extreme.
  void Observe(const at::Tensor& x) override;
  // Back to pass 0 with nothing observed.
  void Reset() override;
  bool initialized() const override;
  std::pair<double, double> Range() const override;
  int64_t state_size() const override;
  dist::ReduceOp merge_op() const override;
  at::Tensor state() const override;
  void set_state(const at::Tensor& state) override;

  // The searched per-channel ranges, float64 CPU [C] (the pass-0 min/max before pass 1).
  // REQUIRES: initialized() (TORCH_CHECK).
  at::Tensor channel_min() const override;
  at::Tensor channel_max() const override;

  int64_t channels() const { return channels_; }
  int64_t bins() const { return bins_; }
  // 0 or 1.
  int pass() const { return pass_; }

 private:
  // Fills searched_min_/searched_max_ from the histograms, once per pass-1 state: RepQ's
  // candidates, then kMse's descent.
  void Search() const;

  ObserverKind kind_;
  int64_t channels_;
  int bits_;
  ActivationGrid grid_;
  int64_t bins_;
  int pass_ = 0;
  ChannelMinMaxObserver extremes_;  // pass 0, and the histograms' ranges in pass 1
  at::Tensor counts_;               // pass 1: float64 CPU [C, bins]
  // The search's result, float64 CPU [C]; computed on first use after the counts last changed.
  mutable at::Tensor searched_min_;
  mutable at::Tensor searched_max_;
  mutable bool searched_ = false;
};

// The value below which a share p of the histogram's mass lies, interpolated linearly inside its
// bin: counts float64 [bins] over [lo, hi] with equal bins, total > 0, 0 <= p <= 1.
double HistogramPercentile(const at::Tensor& counts, double lo, double hi, double p);

}  // namespace psaq::quant
