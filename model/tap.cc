#include "model/tap.h"

#include <c10/util/Exception.h>

namespace psaq::model {

int TapSet::Register(const std::string& name, TapKind kind) {
  TORCH_INTERNAL_ASSERT(index_.count(name) == 0, "tap registered twice: ", name);
  const int id = static_cast<int>(taps_.size());
  taps_.push_back(TapInfo{name, kind});
  index_.emplace(name, id);
  return id;
}

int TapSet::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? -1 : it->second;
}

std::vector<int> TapSet::IdsOfKind(TapKind kind) const {
  std::vector<int> ids;
  for (size_t i = 0; i < taps_.size(); ++i) {
    if (taps_[i].kind == kind) ids.push_back(static_cast<int>(i));
  }
  return ids;
}

void TapSet::Attach(TapObserver* observer, uint32_t mask) {
  observer_ = observer;
  mask_ = observer == nullptr ? 0 : mask;
}

void TapSet::Detach() { Attach(nullptr, 0); }

ScopedTapObserver::ScopedTapObserver(TapSet& taps, TapObserver* observer, uint32_t mask)
    : taps_(taps), previous_(taps.observer()), previous_mask_(0) {
  // The mask is visible only through Wants(): rebuild it kind by kind (3 TapKinds).
  for (uint32_t k = 0; k < 3; ++k) {
    if (taps.Wants(static_cast<TapKind>(k))) previous_mask_ |= 1u << k;
  }
  taps_.Attach(observer, mask);
}

ScopedTapObserver::~ScopedTapObserver() { taps_.Attach(previous_, previous_mask_); }

}  // namespace psaq::model
