#include "quant/granularity.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>

#include <stdexcept>

namespace psaq::quant {

std::string GranularityName(GranularityKind kind) {
  switch (kind) {
    case GranularityKind::kPerChannel:
      return "per_channel";
  }
  TORCH_INTERNAL_ASSERT(false, "unknown GranularityKind");
}

GranularityKind ParseGranularity(const std::string& name) {
  if (name == "per_channel") return GranularityKind::kPerChannel;
  throw std::invalid_argument("unknown weight granularity '" + name + "' (known: per_channel)");
}

std::vector<int64_t> PerChannelGranularity::ParamShape(c10::IntArrayRef shape) const {
  TORCH_CHECK(!shape.empty() && shape[0] > 0,
              "per-channel quantization needs a tensor with a non-empty dim 0, got shape ", shape);
  std::vector<int64_t> out(shape.size(), 1);
  out[0] = shape[0];
  return out;
}

std::pair<at::Tensor, at::Tensor> PerChannelGranularity::MinMax(const at::Tensor& x) const {
  const std::vector<int64_t> param_shape = ParamShape(x.sizes());
  TORCH_CHECK(x.numel() > 0, "per-channel quantization of an empty tensor ", x.sizes());
  at::NoGradGuard no_grad;
  const at::Tensor rows = x.reshape({x.size(0), -1});  // [C, K]
  return {rows.amin(1).reshape(param_shape), rows.amax(1).reshape(param_shape)};
}

std::unique_ptr<Granularity> MakeGranularity(GranularityKind kind) {
  switch (kind) {
    case GranularityKind::kPerChannel:
      return std::make_unique<PerChannelGranularity>();
  }
  TORCH_INTERNAL_ASSERT(false, "unknown GranularityKind");
}

}  // namespace psaq::quant
