// Range observers: they watch a tensor during calibration and summarise it as a range [min, max]
// for an asymmetric activation grid (quant/uniform.h).
//
// Mergeable fixed-size state (like gemma.cpp's DistortionStats::Assimilate, but as a tensor): an
// observer's whole state is `state_size()` float64 numbers, and the elementwise `merge_op()` of two
// states is the state of one observer that saw both inputs. The op is associative and
// commutative and the "nothing observed" state is its identity, so merging the observers of all
// ranks is ONE all-reduce of their concatenated states (quant/calibration.h), and the result does
// not depend on how the data was sharded.
//
// An observer may need more than one pass over the calibration batches (passes(); a percentile
// needs the range of its histogram first: quant/percentile_observer.h): calibration then runs
// every pass over the same batches and merges after each, and BeginPass(p) starts pass p.
// A new range method is one new file implementing this interface plus one line in MakeObserver.
#pragma once

#include <ATen/core/Tensor.h>

#include <limits>
#include <memory>
#include <string>
#include <utility>

#include "dist/communicator.h"

namespace psaq::quant {

enum class ObserverKind {
  kMinMax,         // running global min and max (PSAQ's QuantAct)
  kChannelMinMax,  // per-channel min and max (quant/channel_range_observer.h); made by the
                   // quantized model for RepQ's post-LayerNorm points, not a user choice
  kPercentile,     // RepQ-ViT's search: the best of three percentile ranges by squared error
                   // (quant/percentile_observer.h); two passes
  kMse,            // the percentile search continued over a dense set of clipping tails, least
                   // squared error (quant/percentile_observer.h; psaq's); two passes
};

// "minmax", "channel_minmax", "percentile", "mse". ParseObserverKind accepts the user's choices
// for QuantConfig.act_observer ("minmax", "percentile", "mse") and throws std::invalid_argument
// for another name.
std::string ObserverKindName(ObserverKind kind);
ObserverKind ParseObserverKind(const std::string& name);

class RangeObserver {
 public:
  virtual ~RangeObserver() = default;
  RangeObserver() = default;
  RangeObserver(const RangeObserver&) = delete;
  RangeObserver& operator=(const RangeObserver&) = delete;

  virtual ObserverKind kind() const = 0;

  // Passes over the calibration batches this observer needs (>= 1). Calibration runs as many as
  // the bank's largest; an observer with fewer observes the same batches again in the extra
  // passes (a min/max is unchanged by that).
  virtual int passes() const { return 1; }
  // Called on every observer before pass p >= 1, after the previous pass's merge.
  virtual void BeginPass(int pass) { (void)pass; }

  // Folds x (floating, any shape, any device; empty is ignored) into the state, outside autograd.
  // Throws c10::Error when x holds a non-finite value at its extremes (NaN or inf).
  virtual void Observe(const at::Tensor& x) = 0;
  // Back to "nothing observed".
  virtual void Reset() = 0;
  // True once something was observed here or in a merged state.
  virtual bool initialized() const = 0;
  // The range to quantize with. REQUIRES: initialized() (TORCH_CHECK).
  virtual std::pair<double, double> Range() const = 0;

  // The mergeable state: float64 CPU [state_size()].
  virtual int64_t state_size() const = 0;
  virtual dist::ReduceOp merge_op() const = 0;
  virtual at::Tensor state() const = 0;
  // REQUIRES: float64 with state_size() elements (TORCH_CHECK).
  virtual void set_state(const at::Tensor& state) = 0;

  // This observer becomes one that also saw what `other` saw. REQUIRES: same kind (TORCH_CHECK).
  void Merge(const RangeObserver& other);
};

// PSAQ's QuantAct range tracking: the running min and max over every element observed.
// State: [-min, max], merged with kMax; nothing observed = [-inf, -inf].
// Difference from PSAQ's code: PSAQ stores min = max = 0 as "uninitialised" and tests
// `x_max == 0`, so after a batch whose maximum is exactly 0 its next batch REPLACES the range
// instead of extending it. We keep a real "nothing observed" state instead. Both agree whenever
// the first batch's maximum is non-zero, and always for PSAQ's protocol of one calibration batch.
class MinMaxObserver : public RangeObserver {
 public:
  ObserverKind kind() const override { return ObserverKind::kMinMax; }
  void Observe(const at::Tensor& x) override;
  void Reset() override;
  bool initialized() const override;
  std::pair<double, double> Range() const override;
  int64_t state_size() const override { return 2; }
  dist::ReduceOp merge_op() const override { return dist::ReduceOp::kMax; }
  at::Tensor state() const override;
  void set_state(const at::Tensor& state) override;

 private:
  double neg_min_ = -std::numeric_limits<double>::infinity();
  double max_ = -std::numeric_limits<double>::infinity();
};

// The kind of grid an observed activation is quantized on (a range search scores with it).
enum class ActivationGrid {
  kUniform,   // ActivationQuantizer: asymmetric per tensor
  kLogSqrt2,  // LogSqrt2Quantizer (quant/log_sqrt2_quantizer.h): levels Δ·2^(-k/2) and zero
};

// The per-tensor observer of `kind` for an activation quantized at `bits` on `grid`. A tap at
// 32 bits gets a min/max observer whatever the kind (it is not quantized: only calibration's
// check that the forward reached it reads it). REQUIRES: kind is kMinMax, kPercentile or kMse
// (TORCH_CHECK; a per-channel observer needs its channel count).
std::unique_ptr<RangeObserver> MakeObserver(ObserverKind kind, int bits = 8,
                                           ActivationGrid grid = ActivationGrid::kUniform);

}  // namespace psaq::quant
