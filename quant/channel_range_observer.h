// A per-channel min/max observer: the calibration state RepQ-ViT's scale reparameterisation
// needs at a post-LayerNorm activation (quant/repq_fold.h).
//
// It watches tensors [..., C] and keeps, per channel c (the last dimension), the running min_c and
// max_c over every other index. Like MinMaxObserver (quant/range_observer.h) its state merges
// across ranks with one max all-reduce: state = [-min_0 .. -min_{C-1}, max_0 .. max_{C-1}],
// float64 [2C], "nothing observed" = all -inf. The channel count is fixed at construction (from
// the LayerNorm's width), so every rank's state has the same size even when a rank saw nothing.
// Range() is the per-tensor range over all channels (min_c's min, max_c's max), so the observer
// also serves where a per-tensor range is read (reports, the quantized model's mode checks).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>

#include "quant/range_observer.h"

namespace psaq::quant {

// An observer that gives one range per channel (what RepQ's fold, quant/repq_fold.h, reads):
// this min/max one, or quant/percentile_observer.h's searched ranges.
class ChannelRangeSource {
 public:
  virtual ~ChannelRangeSource() = default;
  // float64 CPU [C]. REQUIRES: the observer is initialized() (TORCH_CHECK).
  virtual at::Tensor channel_min() const = 0;
  virtual at::Tensor channel_max() const = 0;
};

class ChannelMinMaxObserver : public RangeObserver, public ChannelRangeSource {
 public:
  // REQUIRES: channels >= 1 (TORCH_CHECK).
  explicit ChannelMinMaxObserver(int64_t channels);

  ObserverKind kind() const override { return ObserverKind::kChannelMinMax; }
  // x: floating [..., C] with C = channels() (TORCH_CHECK). Throws c10::Error for a non-finite
  // extreme in some channel.
  void Observe(const at::Tensor& x) override;
  void Reset() override;
  // True once any channel saw a value (after a merge, every channel has: Observe updates all).
  bool initialized() const override;
  std::pair<double, double> Range() const override;
  int64_t state_size() const override { return 2 * channels_; }
  dist::ReduceOp merge_op() const override { return dist::ReduceOp::kMax; }
  at::Tensor state() const override;
  void set_state(const at::Tensor& state) override;

  int64_t channels() const { return channels_; }
  // Per-channel extremes, float64 CPU [C]. REQUIRES: initialized() (TORCH_CHECK).
  at::Tensor channel_min() const override;
  at::Tensor channel_max() const override;

 private:
  int64_t channels_;
  at::Tensor neg_min_;  // float64 CPU [C]
  at::Tensor max_;      // float64 CPU [C]
};

}  // namespace psaq::quant
