// PSAQ-ViT V1 for a detector (docs/detection.md, "Data-free generation"): V1 samples come from a
// classification teacher (gen/v1_generator.h, category guidance), then are mapped to the
// detector's input. V1 has no detector variant; this is "category guidance from a related
// classifier": the classifier need not share the detector's backbone (the shipped Fashion-MNIST
// Swin classifier does not: 28 px, patch 2, depths 2-2, against the detector's patch 4,
// depths 2-2-2).
//
// Mapping of one sample x_c (normalised for the classifier, [C_c, h, w]):
//   1. pixels: p = x_c * std_c + mean_c (the classifier's preprocess, [0, 1] units);
//   2. channels: a 1-channel classifier's plane is repeated to the detector's 3 channels; a
//      3-channel classifier for a 1-channel detector is averaged; equal counts are kept;
//   3. size: bilinear resize (align_corners = false, no antialias) to height x width;
//   4. detector normalisation: (255 p - mean_d) / std_d (the detector's mean/std are in 0..255
//      pixel units).
// Resizing before or after the affine steps gives the same result (both are linear per pixel).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "model/config.h"
#include "model/detect/detector_config.h"

namespace psaq::gen {

// x [B, C_c, h, w] normalised for `classifier` -> [B, detector.in_chans, height, width]
// normalised for `detector`, in x's dtype and device.
// REQUIRES (TORCH_CHECK): x 4-D floating point with C_c == classifier.in_chans(); channel counts
// equal, or one of them 1, or C_c == 3 and detector.in_chans == 1; height, width >= 1.
at::Tensor ClassifierSamplesToDetector(const at::Tensor& x, const model::ModelConfig& classifier,
                                       const detect::DetectorConfig& detector, int64_t height,
                                       int64_t width);

}  // namespace psaq::gen
