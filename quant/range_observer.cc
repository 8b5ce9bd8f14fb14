#include "quant/range_observer.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "quant/percentile_observer.h"
#include "quant/quantizer.h"

namespace psaq::quant {

std::string ObserverKindName(ObserverKind kind) {
  switch (kind) {
    case ObserverKind::kMinMax:
      return "minmax";
    case ObserverKind::kChannelMinMax:
      return "channel_minmax";
    case ObserverKind::kPercentile:
      return "percentile";
    case ObserverKind::kMse:
      return "mse";
  }
  TORCH_INTERNAL_ASSERT(false, "unknown ObserverKind");
}

ObserverKind ParseObserverKind(const std::string& name) {
  if (name == "minmax") return ObserverKind::kMinMax;
  if (name == "percentile") return ObserverKind::kPercentile;
  if (name == "mse") return ObserverKind::kMse;
  throw std::invalid_argument("unknown activation observer '" + name +
                              "' (known: minmax, percentile, mse)");
}

void RangeObserver::Merge(const RangeObserver& other) {
  TORCH_CHECK(other.kind() == kind(), "cannot merge a ", ObserverKindName(other.kind()),
              " observer into a ", ObserverKindName(kind()), " observer");
  const at::Tensor mine = state();
  const at::Tensor theirs = other.state();
  switch (merge_op()) {
    case dist::ReduceOp::kMax:
      set_state(at::maximum(mine, theirs));
      return;
    case dist::ReduceOp::kMin:
      set_state(at::minimum(mine, theirs));
      return;
    case dist::ReduceOp::kSum:
      set_state(at::add(mine, theirs));
      return;
    case dist::ReduceOp::kAvg:  // an average of states is not the state of the union
      break;
  }
  TORCH_INTERNAL_ASSERT(false, "an observer's merge op must be kMax, kMin or kSum");
}

void MinMaxObserver::Observe(const at::Tensor& x) {
  TORCH_CHECK(x.is_floating_point(), "range observer: floating tensor expected, got ",
              x.scalar_type());
  if (x.numel() == 0) return;
  at::NoGradGuard no_grad;
  auto [lo, hi] = at::aminmax(x.detach());
  // One device-to-host copy for both extremes.
  const at::Tensor both = at::stack({lo, hi}).to(at::kDouble).cpu();
  const double min = both[0].item<double>();
  const double max = both[1].item<double>();
  TORCH_CHECK(std::isfinite(min) && std::isfinite(max),
              "range observer: the tensor holds non-finite values (min ", min, ", max ", max, ")");
  // The state is (-min, max), not (min, max), so that both extremes merge across ranks with one
  // max all-reduce.
  neg_min_ = std::max(neg_min_, -min);
  max_ = std::max(max_, max);
}

void MinMaxObserver::Reset() {
  // -inf is both "nothing seen" and the identity of max, so an empty rank's state merges away.
  neg_min_ = -std::numeric_limits<double>::infinity();
  max_ = -std::numeric_limits<double>::infinity();
}

bool MinMaxObserver::initialized() const { return std::isfinite(max_); }

std::pair<double, double> MinMaxObserver::Range() const {
  TORCH_CHECK(initialized(), "range observer: nothing observed yet");
  return {-neg_min_, max_};
}

at::Tensor MinMaxObserver::state() const {
  at::Tensor s = at::empty({2}, at::kDouble);
  s[0] = neg_min_;
  s[1] = max_;
  return s;
}

void MinMaxObserver::set_state(const at::Tensor& state) {
  TORCH_CHECK(state.scalar_type() == at::kDouble && state.numel() == 2,
              "min/max observer state must be float64 [2], got ", state.scalar_type(), " ",
              state.sizes());
  const at::Tensor s = state.cpu().contiguous();
  neg_min_ = s.data_ptr<double>()[0];
  max_ = s.data_ptr<double>()[1];
  TORCH_CHECK(std::isfinite(neg_min_) == std::isfinite(max_),
              "min/max observer state has one extreme set and the other not");
}

std::unique_ptr<RangeObserver> MakeObserver(ObserverKind kind, int bits, ActivationGrid grid) {
  switch (kind) {
    case ObserverKind::kMinMax:
      return std::make_unique<MinMaxObserver>();
    case ObserverKind::kPercentile:
    case ObserverKind::kMse:
      // A tap that stays float is not searched (bits would be out of the grid's range).
      if (bits == kBitsOff) return std::make_unique<MinMaxObserver>();
      return std::make_unique<PercentileObserver>(1, bits, grid, kind);
    case ObserverKind::kChannelMinMax:
      TORCH_CHECK(false, "MakeObserver: a per-channel observer needs its channel count");
  }
  TORCH_INTERNAL_ASSERT(false, "unknown ObserverKind");
}

}  // namespace psaq::quant
