// Quantization error metrics: how far a quantized tensor is from its float reference, and where
// in the network the error appears (the first place to look when accuracy drops).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "quant/quantized_model.h"

namespace psaq::quant {

// Signal-to-quantization-noise ratio in dB, computed in float64:
//   10 * log10(sum(reference^2) / sum((test - reference)^2)).
// +inf when the tensors are equal; -inf when the reference is all zero and test is not.
// REQUIRES: same number of elements (TORCH_CHECK).
double Sqnr(const at::Tensor& reference, const at::Tensor& test);

// Cosine similarity of the two tensors flattened, in float64; 1 when both are all zero, 0 when
// exactly one is. REQUIRES: same number of elements (TORCH_CHECK).
double CosineSimilarity(const at::Tensor& a, const at::Tensor& b);

struct TapError {
  std::string name;  // activation tap name, or "output" for the model's output
  double sqnr_db = 0;
  double cosine = 0;
};

// Runs `batch` through `model` in kFloat and in kQuantized and compares, at every activation tap
// in forward order, the float activation with the quantized model's (fake-quantized) activation
// at the same point, then the outputs (last entry, "output"). The errors accumulate along the
// network, so the first tap whose SQNR drops is where to look. No grad; restores the mode.
// REQUIRES: the model is calibrated (TORCH_CHECK). Holds one batch of every activation in memory.
std::vector<TapError> PerLayerError(QuantizedModel& model, const at::Tensor& batch);

}  // namespace psaq::quant
