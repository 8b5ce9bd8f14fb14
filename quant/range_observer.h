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
// A new range method (percentile from a fixed-bin histogram: state = counts, op = kSum) is one
// new file implementing this interface plus one line in MakeObserver.
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
};

// "minmax", "channel_minmax". ParseObserverKind accepts "minmax" only (the user's choice for
// QuantConfig.act_observer) and throws std::invalid_argument for another name.
std::string ObserverKindName(ObserverKind kind);
ObserverKind ParseObserverKind(const std::string& name);

class RangeObserver {
 public:
  virtual ~RangeObserver() = default;
  RangeObserver() = default;
  RangeObserver(const RangeObserver&) = delete;
  RangeObserver& operator=(const RangeObserver&) = delete;

  virtual ObserverKind kind() const = 0;

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

// REQUIRES: kind == kMinMax (TORCH_CHECK; a per-channel observer needs its channel count).
std::unique_ptr<RangeObserver> MakeObserver(ObserverKind kind);

}  // namespace psaq::quant
