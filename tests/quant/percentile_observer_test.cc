// RepQ-ViT's percentile range search (quant/percentile_observer.h): the histogram percentile on
// hand-checked cases and against at::quantile (RepQ's torch.quantile), the search against RepQ's
// procedure run literally on the raw activations, the two-pass merge, and the observer inside a
// repq model (folds exactly; its export and reload: tests/quant/repq_fold_test.cc).
#include "quant/percentile_observer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "quant/activation_quantizer.h"
#include "quant/calibration.h"
#include "quant/log_sqrt2_quantizer.h"
#include "quant/quantized_model.h"
#include "quant/repq_fold.h"
#include "tests/testing/tensor_near.h"
#include "tests/testing/tiny_models.h"

namespace psaq::quant {
namespace {

// Runs both passes over `xs` on one observer (what Calibrate does on one rank).
void ObserveTwoPasses(PercentileObserver& o, const std::vector<at::Tensor>& xs) {
  o.Reset();
  for (const at::Tensor& x : xs) o.Observe(x);
  o.BeginPass(1);
  for (const at::Tensor& x : xs) o.Observe(x);
}

// RepQ's init_quantization_scale, literally: exact quantiles of the raw values, the squared
// error of the tap's quantizer on the raw values, the first strictly best candidate. Returns
// the candidate's index.
int RepqLiteralChoice(const at::Tensor& x, int bits, ActivationGrid grid) {
  const at::Tensor v = x.reshape({-1}).to(at::kDouble);
  double best = std::numeric_limits<double>::infinity();
  int choice = -1;
  for (int i = 0; i < 3; ++i) {
    const double p = PercentileObserver::kPercentiles[i];
    const double hi = at::quantile(v, p).item<double>();
    at::Tensor xq;
    if (grid == ActivationGrid::kLogSqrt2) {
      LogSqrt2Quantizer q(bits);
      q.SetRange(0, hi);
      xq = q.FakeQuantize(v);
    } else {
      ActivationQuantizer q(bits);
      q.SetRange(at::quantile(v, 1 - p).item<double>(), hi);
      xq = q.FakeQuantize(v);
    }
    const double error = (v - xq).square().sum().item<double>();
    if (error < best) {
      best = error;
      choice = i;
    }
  }
  return choice;
}

// A histogram percentile lies within one bin of the order statistic where the cumulative count
// reaches p * N; RepQ's at::quantile interpolates between the sorted values at p * (N - 1). Both
// lie between the neighbours of that order statistic, widened by one bin: in the sparse tails
// consecutive sorted values can be many bins apart, so "one bin from at::quantile" is too tight.
void ExpectNearQuantile(double estimate, const at::Tensor& values, double p, double bin,
                        const std::string& what) {
  const at::Tensor sorted = std::get<0>(values.reshape({-1}).to(at::kDouble).sort());
  const int64_t n = sorted.numel();
  const int64_t k = std::clamp<int64_t>(
      static_cast<int64_t>(std::ceil(p * static_cast<double>(n))) - 1, 0, n - 1);
  const double below = sorted[std::max<int64_t>(k - 1, 0)].item<double>() - bin;
  const double above = sorted[std::min<int64_t>(k + 1, n - 1)].item<double>() + bin;
  const double exact = at::quantile(sorted, p).item<double>();
  EXPECT_GE(estimate, below) << what << ": p " << p << ", at::quantile " << exact;
  EXPECT_LE(estimate, above) << what << ": p " << p << ", at::quantile " << exact;
  EXPECT_GE(exact, below) << what;
  EXPECT_LE(exact, above) << what;
}

TEST(HistogramPercentileTest, HandCheckedCases) {
  const at::Tensor flat = at::tensor({1.0, 1.0, 1.0, 1.0}, at::kDouble);  // over [0, 4]
  EXPECT_DOUBLE_EQ(HistogramPercentile(flat, 0, 4, 0.0), 0.0);
  EXPECT_DOUBLE_EQ(HistogramPercentile(flat, 0, 4, 0.25), 1.0);
  EXPECT_DOUBLE_EQ(HistogramPercentile(flat, 0, 4, 0.5), 2.0);
  EXPECT_DOUBLE_EQ(HistogramPercentile(flat, 0, 4, 0.625), 2.5);
  EXPECT_DOUBLE_EQ(HistogramPercentile(flat, 0, 4, 1.0), 4.0);
  // Empty bins are skipped: the mass sits in [1, 2] and [3, 4] of [0, 4].
  const at::Tensor gaps = at::tensor({0.0, 2.0, 0.0, 2.0}, at::kDouble);
  EXPECT_DOUBLE_EQ(HistogramPercentile(gaps, 0, 4, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(HistogramPercentile(gaps, 0, 4, 0.25), 1.5);
  EXPECT_DOUBLE_EQ(HistogramPercentile(gaps, 0, 4, 0.5), 2.0);
  EXPECT_DOUBLE_EQ(HistogramPercentile(gaps, 0, 4, 0.75), 3.5);
  EXPECT_DOUBLE_EQ(HistogramPercentile(gaps, 0, 4, 1.0), 4.0);
  EXPECT_THROW(HistogramPercentile(at::zeros({4}, at::kDouble), 0, 4, 0.5), c10::Error);
  EXPECT_THROW(HistogramPercentile(flat, 0, 4, 1.5), c10::Error);
}

TEST(PercentileObserverTest, PercentilesAreWithinOneBinOfExactQuantiles) {
  at::manual_seed(11);
  // A bulk with a heavy tail and a few far outliers, as a GELU output or a residual sum.
  at::Tensor x = at::cat({at::randn({40000}), at::randn({400}) * 8, at::full({3}, 60.0f)});
  PercentileObserver o(1, 4, ActivationGrid::kUniform);
  ObserveTwoPasses(o, {x.slice(0, 0, 20000), x.slice(0, 20000)});
  EXPECT_EQ(o.pass(), 1);
  const auto [lo, hi] = std::make_pair(x.min().item<double>(), x.max().item<double>());
  const double bin = (hi - lo) / static_cast<double>(PercentileObserver::kTensorBins);
  const at::Tensor counts = o.state();
  ASSERT_EQ(counts.numel(), PercentileObserver::kTensorBins);
  EXPECT_EQ(counts.sum().item<double>(), 40403);
  const at::Tensor v = x.to(at::kDouble);
  for (double p : {0.001, 0.5, 0.999, 0.9999, 0.99999}) {
    ExpectNearQuantile(HistogramPercentile(counts, lo, hi, p), v, p, bin, "histogram");
  }
  // In the dense middle both are within a bin of each other.
  EXPECT_NEAR(HistogramPercentile(counts, lo, hi, 0.5), at::quantile(v, 0.5).item<double>(), bin);
}

TEST(PercentileObserverTest, SearchPicksRepqsCandidateOnRawActivations) {
  at::manual_seed(12);
  // Cases where RepQ's literal procedure picks each of its three candidates at some bit width.
  const std::vector<at::Tensor> cases = {
      at::randn({30000}),                                                   // Gaussian
      at::cat({at::randn({30000}), at::full({20}, 40.0f)}),                 // far outliers
      at::cat({at::rand({30000}), at::rand({200}) * 5 + 1, at::full({2}, -9.0f)}),
  };
  std::vector<int> seen(3, 0);
  for (size_t k = 0; k < cases.size(); ++k) {
    for (int bits : {3, 4, 8}) {
      const at::Tensor& x = cases[k];
      PercentileObserver o(1, bits, ActivationGrid::kUniform);
      ObserveTwoPasses(o, {x});
      const int want = RepqLiteralChoice(x, bits, ActivationGrid::kUniform);
      ++seen[static_cast<size_t>(want)];
      const double p = PercentileObserver::kPercentiles[want];
      const at::Tensor v = x.to(at::kDouble);
      const double bin = (x.max() - x.min()).item<double>() / PercentileObserver::kTensorBins;
      const auto [lo, hi] = o.Range();
      const std::string what = "case " + std::to_string(k) + " bits " + std::to_string(bits);
      ExpectNearQuantile(lo, v, 1 - p, bin, what);
      ExpectNearQuantile(hi, v, p, bin, what);
    }
  }
  EXPECT_GT(seen[0] + seen[1] + seen[2], 0);
  // The cases are chosen so that the search is not always the same candidate.
  EXPECT_LT(std::max({seen[0], seen[1], seen[2]}), 9)
      << seen[0] << " " << seen[1] << " " << seen[2];
}

TEST(PercentileObserverTest, LogSqrt2SearchMatchesRepqOnAttentionProbabilities) {
  at::manual_seed(13);
  const at::Tensor probs = at::softmax(at::randn({64, 4, 17, 17}) * 3, -1);
  for (int bits : {3, 4, 8}) {
    PercentileObserver o(1, bits, ActivationGrid::kLogSqrt2);
    ObserveTwoPasses(o, {probs});
    const int want = RepqLiteralChoice(probs, bits, ActivationGrid::kLogSqrt2);
    const double bin = (probs.max() - probs.min()).item<double>() / PercentileObserver::kTensorBins;
    const auto [lo, hi] = o.Range();
    EXPECT_EQ(lo, 0.0);
    ExpectNearQuantile(hi, probs, PercentileObserver::kPercentiles[want], bin,
                       "bits " + std::to_string(bits));
  }
}

TEST(PercentileObserverTest, PerChannelSearchesEachChannelOnItsOwn) {
  at::manual_seed(14);
  // Channel c has scale 2^c and, in channel 2 only, 5 outliers in 20,000 (below 0.1%).
  at::Tensor x = at::randn({20000, 3}) * at::tensor({1.0f, 2.0f, 4.0f});
  x.index_put_({at::arange(0, 20000, 4000), 2}, 80.0f);
  PercentileObserver all(3, 4, ActivationGrid::kUniform);
  ObserveTwoPasses(all, {x.reshape({200, 100, 3})});
  for (int64_t c = 0; c < 3; ++c) {
    // Each channel's range is one of RepQ's candidates for that channel's values, searched with
    // the fold's grid (zero point not clamped): compare with the literal procedure's quantiles.
    const at::Tensor xc = x.select(1, c).contiguous();
    const double bin = (xc.max() - xc.min()).item<double>() / PercentileObserver::kChannelBins;
    bool matches_one = false;
    for (double p : PercentileObserver::kPercentiles) {
      const double lo = all.channel_min()[c].item<double>();
      const double hi = all.channel_max()[c].item<double>();
      const double qlo = at::quantile(xc.to(at::kDouble), 1 - p).item<double>();
      const double qhi = at::quantile(xc.to(at::kDouble), p).item<double>();
      // Within a few bins in these dense-enough tails (20,000 values per channel).
      matches_one |= std::abs(lo - qlo) < 4 * bin && std::abs(hi - qhi) < 4 * bin;
    }
    EXPECT_TRUE(matches_one) << "channel " << c;
  }
  EXPECT_LT(all.channel_max()[2].item<double>(), 40.0);  // the outliers were clipped
  EXPECT_GT(all.channel_max()[2].item<double>(), 8.0);   // the Gaussian bulk was not
  EXPECT_LT(all.channel_max()[0].item<double>(), all.channel_max()[1].item<double>());
  EXPECT_EQ(all.Range().second, all.channel_max().max().item<double>());
}

TEST(PercentileObserverTest, TwoPassMergeEqualsOneObserverOfAll) {
  at::manual_seed(15);
  const at::Tensor a = at::randn({3000}) * 2;
  const at::Tensor b = at::randn({1000}) + 5;
  PercentileObserver left(1, 4, ActivationGrid::kUniform), right(1, 4, ActivationGrid::kUniform),
      empty(1, 4, ActivationGrid::kUniform), both(1, 4, ActivationGrid::kUniform);
  ObserveTwoPasses(both, {a, b});
  // What Calibrate does over three ranks (the third saw nothing): observe, all-reduce, next pass.
  std::vector<PercentileObserver*> ranks = {&left, &right, &empty};
  left.Observe(a);
  right.Observe(b);
  at::Tensor merged = at::maximum(at::maximum(left.state(), right.state()), empty.state());
  EXPECT_EQ(left.merge_op(), dist::ReduceOp::kMax);
  for (PercentileObserver* o : ranks) o->set_state(merged.clone());
  for (PercentileObserver* o : ranks) o->BeginPass(1);
  left.Observe(a);
  right.Observe(b);
  EXPECT_EQ(left.merge_op(), dist::ReduceOp::kSum);
  merged = left.state() + right.state() + empty.state();
  for (PercentileObserver* o : ranks) o->set_state(merged.clone());
  for (PercentileObserver* o : ranks) {
    EXPECT_TENSOR_IDENTICAL(o->state(), both.state());
    EXPECT_EQ(o->Range(), both.Range());
  }
  // The search clipped something: the range is inside the min/max.
  EXPECT_GT(both.Range().first, at::cat({a, b}).min().item<double>());
  EXPECT_LT(both.Range().second, at::cat({a, b}).max().item<double>());
}

TEST(PercentileObserverTest, BeforeThePassOneHistogramItIsTheMinMax) {
  PercentileObserver o(1, 4, ActivationGrid::kUniform);
  EXPECT_FALSE(o.initialized());
  EXPECT_THROW(o.Range(), c10::Error);
  o.Observe(at::tensor({-1.0f, 3.0f}));
  EXPECT_EQ(o.Range(), std::make_pair(-1.0, 3.0));
  EXPECT_EQ(o.state_size(), 2);
  o.BeginPass(1);
  EXPECT_EQ(o.state_size(), PercentileObserver::kTensorBins);
  o.Reset();
  EXPECT_EQ(o.pass(), 0);
  EXPECT_FALSE(o.initialized());
  // Nothing observed in pass 0: pass 1 does not start (calibration then names the tap).
  o.BeginPass(1);
  EXPECT_EQ(o.pass(), 0);
  EXPECT_THROW(o.Observe(at::tensor({std::numeric_limits<float>::quiet_NaN()})), c10::Error);
  EXPECT_THROW(PercentileObserver(0, 4, ActivationGrid::kUniform), c10::Error);
  EXPECT_THROW(PercentileObserver(1, kBitsOff, ActivationGrid::kUniform), c10::Error);
  EXPECT_THROW(PercentileObserver(4, 4, ActivationGrid::kLogSqrt2), c10::Error);
  EXPECT_THROW(PercentileObserver(3, 4, ActivationGrid::kUniform).Observe(at::ones({2, 4})),
               c10::Error);
}

TEST(PercentileObserverTest, ParsedAndMadeForQuantizedTapsOnly) {
  for (ObserverKind kind : {ObserverKind::kPercentile, ObserverKind::kMse}) {
    EXPECT_EQ(ParseObserverKind(ObserverKindName(kind)), kind);
    EXPECT_EQ(MakeObserver(kind, 4)->kind(), kind);
    EXPECT_EQ(MakeObserver(kind, kBitsOff)->kind(), ObserverKind::kMinMax);
    EXPECT_EQ(MakeObserver(kind, 4, ActivationGrid::kLogSqrt2)->kind(), kind);
  }
  EXPECT_EQ(ObserverKindName(ObserverKind::kPercentile), "percentile");
  EXPECT_EQ(ObserverKindName(ObserverKind::kMse), "mse");
  EXPECT_THROW(ParseObserverKind("kl"), std::invalid_argument);
  EXPECT_THROW(PercentileObserver(1, 4, ActivationGrid::kUniform, ObserverKind::kMinMax),
               c10::Error);
}

// The mse search's candidates, hand-checked: 0, then 49 masses 1e-7 .. 1e-1 evenly in log10.
TEST(MseSearchTest, TailMassesAreZeroThenEvenInLog10) {
  const std::vector<double>& t = PercentileObserver::MseTails();
  ASSERT_EQ(t.size(), 50u);
  EXPECT_EQ(t[0], 0.0);
  EXPECT_NEAR(t[1], 1e-7, 1e-20);
  EXPECT_NEAR(t[9], 1e-6, 1e-19);  // 48 steps over 6 decades: 8 per decade
  EXPECT_NEAR(t[25], 1e-4, 1e-17);
  EXPECT_NEAR(t[49], 1e-1, 1e-14);
  for (size_t i = 2; i < t.size(); ++i) {
    EXPECT_NEAR(t[i] / t[i - 1], std::pow(10.0, 1.0 / 8), 1e-12);
  }
}

// The weighted squared error of quantizing `x` on `grid` with the range [lo, hi], the way the
// tap will (the per-tensor ActivationQuantizer or the log-sqrt(2) one).
double RawError(const at::Tensor& x, int bits, ActivationGrid grid, double lo, double hi) {
  const at::Tensor v = x.reshape({-1}).to(at::kDouble);
  if (grid == ActivationGrid::kLogSqrt2) {
    LogSqrt2Quantizer q(bits);
    q.SetRange(0, hi);
    return (v - q.FakeQuantize(v.clamp_min(0))).square().sum().item<double>();
  }
  ActivationQuantizer q(bits);
  q.SetRange(lo, hi);
  return (v - q.FakeQuantize(v)).square().sum().item<double>();
}

// The same descent run literally on the raw values (exact quantiles, exact errors), from RepQ's
// literal choice. Returns its range.
std::pair<double, double> MseLiteral(const at::Tensor& x, int bits, ActivationGrid grid) {
  const at::Tensor v = x.reshape({-1}).to(at::kDouble);
  const bool log_grid = grid == ActivationGrid::kLogSqrt2;
  const double p = PercentileObserver::kPercentiles[RepqLiteralChoice(x, bits, grid)];
  double lo = log_grid ? 0.0 : at::quantile(v, 1 - p).item<double>();
  double hi = at::quantile(v, p).item<double>();
  double best = RawError(x, bits, grid, lo, hi);
  for (int round = 0; round < PercentileObserver::kMseRounds; ++round) {
    for (double t : PercentileObserver::MseTails()) {
      const double cand = at::quantile(v, 1 - t).item<double>();
      if (!log_grid && cand <= lo) continue;
      const double e = RawError(x, bits, grid, lo, cand);
      if (e < best) best = e, hi = cand;
    }
    if (log_grid) break;
    for (double t : PercentileObserver::MseTails()) {
      const double cand = at::quantile(v, t).item<double>();
      if (cand >= hi) continue;
      const double e = RawError(x, bits, grid, cand, hi);
      if (e < best) best = e, lo = cand;
    }
  }
  return {lo, hi};
}

// On long-tailed activations (a GELU of a Gaussian with heavy-tailed scale, a Laplace with
// outliers, softmax-like probabilities) the searched range quantizes the raw values
//   - at 4 bits within 2% of the literal descent's error, and at least 2% better than RepQ's
//     percentile choice on this draw (0.967, 0.941, 0.918 of its error);
//   - at 8 bits within 15% of the literal descent's error: the histogram's bins are about as wide
//     as the 8-bit step on the GELU's tail, so the bin-centre errors steer the search less well
//     (over eight draws of these data: at most 1.13 for the GELU, 1.01 for the others; at most
//     1.011 at 4 bits);
//   - never worse than RepQ's choice (to 0.1%: the search minimises the histogram's error, not
//     the raw values'; at most 1.0009 over the eight draws).
// Each random tensor is drawn in its own statement: the operands of one expression are evaluated
// in an unspecified order (gcc and clang differ), and the draw must not depend on the compiler.
TEST(MseSearchTest, MatchesTheLiteralDescentAndBeatsThePercentiles) {
  at::manual_seed(21);
  const at::Tensor gelu_base = at::randn({40000});
  const at::Tensor gelu_scale = at::exp(at::randn({40000}) * 0.7);
  const at::Tensor gelu = at::gelu(gelu_base * gelu_scale);
  const at::Tensor laplace_magnitude = at::log(at::rand({40000}) + 1e-12);
  const at::Tensor laplace_sign = at::sign(at::rand({40000}) - 0.5);
  const at::Tensor laplace = at::cat({laplace_magnitude * laplace_sign, at::full({10}, 30.0f)});
  const at::Tensor probs = at::softmax(at::randn({400, 100}) * 3, -1).reshape({-1});
  struct Case {
    const char* name;
    at::Tensor x;
    ActivationGrid grid;
  };
  for (const Case& c : {Case{"gelu", gelu, ActivationGrid::kUniform},
                        Case{"laplace", laplace, ActivationGrid::kUniform},
                        Case{"softmax", probs, ActivationGrid::kLogSqrt2}}) {
    for (int bits : {4, 8}) {
      SCOPED_TRACE(std::string(c.name) + " at " + std::to_string(bits) + " bits");
      PercentileObserver mse(1, bits, c.grid, ObserverKind::kMse);
      PercentileObserver percentile(1, bits, c.grid, ObserverKind::kPercentile);
      const int64_t half = c.x.numel() / 2;
      const std::vector<at::Tensor> shards = {c.x.slice(0, 0, half), c.x.slice(0, half)};
      ObserveTwoPasses(mse, shards);
      ObserveTwoPasses(percentile, shards);
      const auto [lo, hi] = mse.Range();
      const auto [plo, phi] = percentile.Range();
      const auto [llo, lhi] = MseLiteral(c.x, bits, c.grid);
      const double error = RawError(c.x, bits, c.grid, lo, hi);
      const double literal = RawError(c.x, bits, c.grid, llo, lhi);
      const double repq = RawError(c.x, bits, c.grid, plo, phi);
      RecordProperty(std::string(c.name) + "_w" + std::to_string(bits) + "_mse_vs_percentile",
                     std::to_string(error / repq));
      EXPECT_LE(error, (bits == 4 ? 1.02 : 1.15) * literal)
          << "range [" << lo << ", " << hi << "], literal [" << llo << ", " << lhi << "]";
      EXPECT_LE(error, 1.001 * repq);
      if (bits == 4) {  // measured on this draw: see the comment above
        EXPECT_LT(error, 0.98 * repq) << "percentile [" << plo << ", " << phi << "]";
      }
    }
  }
}

TEST(MseSearchTest, PerChannelSearchOnlyNarrowsAndMergesLikeThePercentile) {
  at::manual_seed(22);
  at::Tensor x = at::gelu(at::randn({20000, 4}) * at::tensor({0.5f, 1.0f, 3.0f, 9.0f}));
  PercentileObserver mse(4, 4, ActivationGrid::kUniform, ObserverKind::kMse);
  PercentileObserver percentile(4, 4, ActivationGrid::kUniform, ObserverKind::kPercentile);
  ObserveTwoPasses(mse, {x.slice(0, 0, 7000), x.slice(0, 7000)});
  ObserveTwoPasses(percentile, {x});
  EXPECT_EQ(mse.kind(), ObserverKind::kMse);
  EXPECT_EQ(mse.passes(), 2);
  EXPECT_EQ(mse.merge_op(), dist::ReduceOp::kSum);
  EXPECT_TENSOR_IDENTICAL(mse.state(), percentile.state());  // the same histograms
  for (int64_t c = 0; c < 4; ++c) {
    EXPECT_GE(mse.channel_min()[c].item<double>(), x.select(1, c).min().item<double>());
    EXPECT_LE(mse.channel_max()[c].item<double>(),
              percentile.channel_max()[c].item<double>() * 1.0001)
        << "channel " << c;
  }
  // Each channel's scale follows its own spread.
  EXPECT_LT(mse.channel_max()[0].item<double>(), mse.channel_max()[3].item<double>());
}

class PercentileModelTest : public ::testing::TestWithParam<std::string> {};

QuantConfig RepqPercentile(int w_bits, int a_bits) {
  QuantConfig config = testing::Bits(w_bits, a_bits);
  config.quantizer = QuantizerKind::kRepq;
  config.act_observer = ObserverKind::kPercentile;
  return config;
}

TEST_P(PercentileModelTest, RepqSearchesEveryQuantizedPointAndEachFoldedChannel) {
  model::ModelPtr m = testing::TinyModel(GetParam());
  QuantizedModel q(m, RepqPercentile(4, 4));
  for (const FoldSite& site : FindFoldSites(*m)) {
    const RangeObserver& o = q.observer(q.TapId(site.tap));
    ASSERT_EQ(o.kind(), ObserverKind::kPercentile) << site.tap;
    EXPECT_GT(static_cast<const PercentileObserver&>(o).channels(), 1) << site.tap;
  }
  Calibrate(q, testing::Batches(testing::TinyConfig(GetParam()), 2, 8, 101), nullptr);
  // Every quantized point searched; the softmax ones on the log grid, from 0.
  int searched = 0;
  for (int id : q.activation_taps()) {
    if (!q.activation_quantizer(id).enabled()) {
      EXPECT_EQ(q.observer(id).kind(), ObserverKind::kMinMax) << q.tap(id).name;
      continue;
    }
    EXPECT_EQ(q.observer(id).kind(), ObserverKind::kPercentile) << q.tap(id).name;
    EXPECT_EQ(static_cast<const PercentileObserver&>(q.observer(id)).pass(), 1);
    if (IsSoftmaxTap(q.tap(id).name)) {
      EXPECT_EQ(q.activation_quantizer(id).range().first, 0.0);
    }
    ++searched;
  }
  EXPECT_GT(searched, 5);
}

TEST_P(PercentileModelTest, PsaqQuantizerSearchesEveryQuantizedPoint) {
  QuantConfig config = testing::Bits(8, 4);
  config.act_observer = ObserverKind::kPercentile;
  QuantizedModel searched(testing::TinyModel(GetParam()), config);
  QuantizedModel minmax(testing::TinyModel(GetParam()), testing::Bits(8, 4));
  const auto batches = testing::Batches(testing::TinyConfig(GetParam()), 2, 8, 505);
  Calibrate(searched, batches, nullptr);
  Calibrate(minmax, batches, nullptr);
  int narrower = 0;
  for (int id : minmax.activation_taps()) {
    if (!minmax.activation_quantizer(id).enabled()) continue;
    const auto [lo, hi] = searched.activation_quantizer(id).range();
    const auto [mlo, mhi] = minmax.activation_quantizer(id).range();
    EXPECT_GE(lo, mlo) << minmax.tap(id).name;
    EXPECT_LE(hi, mhi) << minmax.tap(id).name;
    narrower += (hi - lo) < (mhi - mlo);
  }
  EXPECT_GT(narrower, 0);
}

INSTANTIATE_TEST_SUITE_P(Architectures, PercentileModelTest, ::testing::Values("vit", "swin"));

}  // namespace
}  // namespace psaq::quant
