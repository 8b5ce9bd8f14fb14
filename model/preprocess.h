// Evaluation preprocessing, as timm's eval transform: resize the short side to
// floor(input_size / crop_pct) with the configured interpolation (antialiased when shrinking, as
// PIL does), centre-crop input_size x input_size, scale to [0, 1], normalise with mean/std.
#pragma once

#include <ATen/core/Tensor.h>

#include "model/config.h"

namespace psaq::model {

// image: uint8 [H, W, C] (C = 1 or 3), as decoded.
// Returns float32 [in_chans, img_size, img_size]. A 1-channel image is repeated to 3 channels when
// the model has 3, a 3-channel image is converted to luma (ITU-R 601) when it has 1.
at::Tensor PreprocessImage(const at::Tensor& image_hwc_u8, const ModelConfig& config);

// Normalised pixel box: per channel [(0 - mean)/std, (1 - mean)/std], as float32 [C] tensors.
std::pair<at::Tensor, at::Tensor> NormalisedPixelRange(const ModelConfig& config);

}  // namespace psaq::model
