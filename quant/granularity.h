// How a weight tensor is split into groups that share one scale.
//
// PSAQ quantizes weights per output channel: dim 0 of a Linear weight [out, in] and of a Conv
// weight [out, in, kh, kw]. A new grouping (per tensor, per group of k channels) is a new
// Granularity in its own file plus one line in MakeGranularity.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace psaq::quant {

enum class GranularityKind {
  kPerChannel,  // one scale per output channel (dim 0), PSAQ's weight grouping
};

// "per_channel". ParseGranularity throws std::invalid_argument for an unknown name.
std::string GranularityName(GranularityKind kind);
GranularityKind ParseGranularity(const std::string& name);

class Granularity {
 public:
  virtual ~Granularity() = default;
  virtual GranularityKind kind() const = 0;

  // The shape of the per-group parameters for a tensor of shape `shape`, broadcastable against
  // it (per channel: [C, 1, ..., 1]). REQUIRES: a shape this granularity accepts (TORCH_CHECK).
  virtual std::vector<int64_t> ParamShape(c10::IntArrayRef shape) const = 0;

  // Per-group (min, max) of x, each shaped ParamShape(x.sizes()). No grad.
  virtual std::pair<at::Tensor, at::Tensor> MinMax(const at::Tensor& x) const = 0;
};

// Per output channel (dim 0). Accepts tensors of rank >= 1 with a non-empty dim 0.
class PerChannelGranularity : public Granularity {
 public:
  GranularityKind kind() const override { return GranularityKind::kPerChannel; }
  std::vector<int64_t> ParamShape(c10::IntArrayRef shape) const override;
  std::pair<at::Tensor, at::Tensor> MinMax(const at::Tensor& x) const override;
};

std::unique_ptr<Granularity> MakeGranularity(GranularityKind kind);

}  // namespace psaq::quant
