#include "quant/channel_range_observer.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>

#include <limits>

namespace psaq::quant {

ChannelMinMaxObserver::ChannelMinMaxObserver(int64_t channels) : channels_(channels) {
  TORCH_CHECK(channels >= 1, "per-channel observer: channels must be >= 1, got ", channels);
  Reset();
}

void ChannelMinMaxObserver::Observe(const at::Tensor& x) {
  TORCH_CHECK(x.is_floating_point(), "per-channel observer: floating tensor expected, got ",
              x.scalar_type());
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) == channels_, "per-channel observer: expected [..., ",
              channels_, "], got ", x.sizes());
  if (x.numel() == 0) return;
  at::NoGradGuard no_grad;
  auto [lo, hi] = at::aminmax(x.detach().reshape({-1, channels_}), 0);
  const at::Tensor both = at::stack({lo, hi}).to(at::kDouble).cpu();  // one copy to the host
  TORCH_CHECK(both.isfinite().all().item<bool>(),
              "per-channel observer: the tensor holds non-finite values");
  neg_min_ = at::maximum(neg_min_, -both[0]);
  max_ = at::maximum(max_, both[1]);
}

void ChannelMinMaxObserver::Reset() {
  const double inf = std::numeric_limits<double>::infinity();
  neg_min_ = at::full({channels_}, -inf, at::kDouble);
  max_ = at::full({channels_}, -inf, at::kDouble);
}

bool ChannelMinMaxObserver::initialized() const { return max_.isfinite().any().item<bool>(); }

std::pair<double, double> ChannelMinMaxObserver::Range() const {
  TORCH_CHECK(initialized(), "per-channel observer: nothing observed yet");
  return {-neg_min_.max().item<double>(), max_.max().item<double>()};
}

at::Tensor ChannelMinMaxObserver::state() const { return at::cat({neg_min_, max_}); }

void ChannelMinMaxObserver::set_state(const at::Tensor& state) {
  TORCH_CHECK(state.scalar_type() == at::kDouble && state.numel() == 2 * channels_,
              "per-channel observer state must be float64 [", 2 * channels_, "], got ",
              state.scalar_type(), " ", state.sizes());
  const at::Tensor s = state.cpu().contiguous();
  neg_min_ = s.slice(0, 0, channels_).clone();
  max_ = s.slice(0, channels_).clone();
  TORCH_CHECK(at::equal(neg_min_.isfinite(), max_.isfinite()),
              "per-channel observer state has a channel with one extreme set and the other not");
}

at::Tensor ChannelMinMaxObserver::channel_min() const {
  TORCH_CHECK(initialized(), "per-channel observer: nothing observed yet");
  return -neg_min_;
}

at::Tensor ChannelMinMaxObserver::channel_max() const {
  TORCH_CHECK(initialized(), "per-channel observer: nothing observed yet");
  return max_.clone();
}

}  // namespace psaq::quant
