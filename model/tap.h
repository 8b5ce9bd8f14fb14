// Named taps: the one mechanism by which quant/ and gen/ see inside a float model.
//
// At every weight use, at every activation point PSAQ quantizes (docs/psaq_spec.md §3.4-3.5) and
// at each block's read-only features, a module hands the tensor to the model's TapSet, which
// passes it to the attached observer (if any) and returns the observer's replacement. With no
// observer attached, Apply() is one branch and returns its argument.
//
// Tap names (registered at construction, in forward-call order):
//   kWeight      the parameter's own state-dict name, e.g. "blocks.3.attn.qkv.weight".
//   kActivation  "<module path>.<point>", e.g. "blocks.3.attn.qkv.out", "input", "head.out".
//   kFeature     "<block path>.av_mean" (A·V averaged over heads, [B', N, d]) and
//                "<block path>.out" (the block output, ViT [B, N, C], Swin [B, H, W, C]).
// A feature tap is applied after the activation tap at the same point, so an observer of a
// quantized model sees quantized features. Feature tensors are only computed when an attached
// observer asked for kFeature (TapSet::Wants), so the float path pays nothing for them.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace psaq::model {

enum class TapKind : uint8_t {
  kWeight = 0,      // a parameter where it is used (Linear/Conv weights)
  kActivation = 1,  // an activation PSAQ quantizes (includes pos_embed and Swin's bias table)
  kFeature = 2,     // read-only features for the generator and for feature distances
};

// Bit mask of TapKinds, for TapSet::Attach.
inline constexpr uint32_t TapMask(TapKind k) { return 1u << static_cast<uint32_t>(k); }
inline constexpr uint32_t kAllTaps = 0x7u;

struct TapInfo {
  std::string name;
  TapKind kind;
};

// Sees (and may replace) tensors at taps. Implementations live in quant/ and gen/.
class TapObserver {
 public:
  virtual ~TapObserver() = default;
  // Called at tap `id` (an index into TapSet::taps()) with the tensor about to be used; returns
  // the tensor to use instead (`x` itself to leave it unchanged). Must keep shape and dtype.
  virtual at::Tensor OnTap(int id, const TapInfo& info, const at::Tensor& x) = 0;
};

// The registry of a model's taps plus the attached observer. One per model instance, shared by its
// modules. Not thread-safe: a model instance runs one forward at a time.
class TapSet {
 public:
  TapSet() = default;
  TapSet(const TapSet&) = delete;
  TapSet& operator=(const TapSet&) = delete;

  // Registers a tap and returns its id. REQUIRES: `name` not registered yet (CHECK).
  int Register(const std::string& name, TapKind kind);

  // All taps in registration (= forward) order.
  const std::vector<TapInfo>& taps() const { return taps_; }
  // The id of `name`, or -1.
  int Find(const std::string& name) const;
  // Ids of all taps of one kind, in forward order.
  std::vector<int> IdsOfKind(TapKind kind) const;

  // Attaches `observer` (not owned; must outlive the attachment) for the kinds in `mask`.
  // Replaces any previous observer.
  void Attach(TapObserver* observer, uint32_t mask = kAllTaps);
  void Detach();
  TapObserver* observer() const { return observer_; }

  // True when an observer is attached for `kind`: lets modules skip computing feature tensors.
  bool Wants(TapKind kind) const { return observer_ != nullptr && (mask_ & TapMask(kind)) != 0; }

  // The tensor to use at tap `id`.
  at::Tensor Apply(int id, const at::Tensor& x) const {
    if (observer_ == nullptr) return x;
    const TapInfo& info = taps_[static_cast<size_t>(id)];
    if ((mask_ & TapMask(info.kind)) == 0) return x;
    return observer_->OnTap(id, info, x);
  }

 private:
  std::vector<TapInfo> taps_;
  std::unordered_map<std::string, int> index_;
  TapObserver* observer_ = nullptr;
  uint32_t mask_ = 0;
};

// RAII attachment: attaches in the constructor, restores the previous observer in the destructor.
class ScopedTapObserver {
 public:
  ScopedTapObserver(TapSet& taps, TapObserver* observer, uint32_t mask = kAllTaps);
  ~ScopedTapObserver();
  ScopedTapObserver(const ScopedTapObserver&) = delete;
  ScopedTapObserver& operator=(const ScopedTapObserver&) = delete;

 private:
  TapSet& taps_;
  TapObserver* previous_;
  uint32_t previous_mask_;
};

}  // namespace psaq::model
