// Evaluation preprocessing, as timm's eval transform (transforms_imagenet_eval, crop_mode
// "center") on a PIL image:
//   1. channels: a 1-channel image is repeated to 3 when the model has 3 (PIL convert("RGB")); a
//      3-channel image becomes luma when the model has 1 (PIL convert("L"): ITU-R 601-2,
//      L = (19595 R + 38470 G + 7471 B + 2^15) >> 16, i.e. R*299/1000 + G*587/1000 + B*114/1000
//      rounded);
//   2. resize the short side to floor(img_size / crop_pct), the long side to
//      int(short_target * long / short) (torchvision Resize with an int size), with the configured
//      interpolation, PIL-style (filter support scaled by the shrink factor, so antialiased when
//      shrinking; bicubic a = -0.5), then rounded half-up and clamped to uint8 values as PIL does;
//      an image already of that size is left untouched;
//   3. centre-crop img_size x img_size (torchvision CenterCrop: offset round-half-even((H - h) /
//   2),
//      zero padding when the image is smaller);
//   4. scale to [0, 1] (x / 255) and normalise per channel ((x - mean) / std), float32.
// PIL rounds to uint8 after each of its two separable passes and this implementation only after
// both, so resized pixels may differ from PIL's by one grey level (1/255 before normalisation).
// With crop_pct == 1 and an image of img_size x img_size (e.g. Fashion-MNIST 28x28 models) steps
// 2-3 are the identity.
#pragma once

#include <ATen/core/Tensor.h>

#include <utility>
#include <vector>

#include "model/config.h"

namespace psaq::model {

// image: uint8 [H, W, C] (C = 1 or 3), as decoded, on any device.
// Returns float32 [in_chans, img_size, img_size] on the image's device.
// Throws (TORCH_CHECK) on a wrong dtype/rank/channel count, an empty image, an unknown
// interpolation, mean/std sizes != in_chans, std <= 0, or crop_pct <= 0.
at::Tensor PreprocessImage(const at::Tensor& image_hwc_u8, const ModelConfig& config);

// PreprocessImage on each image (sizes may differ), stacked: float32 [B, in_chans, img_size,
// img_size]. An empty list gives a [0, in_chans, img_size, img_size] CPU tensor.
at::Tensor PreprocessBatch(const std::vector<at::Tensor>& images_hwc_u8, const ModelConfig& config);

// Normalised pixel box: per channel [(0 - mean)/std, (1 - mean)/std], as float32 [C] tensors,
// computed with the same float32 arithmetic as PreprocessImage, so every preprocessed value lies
// inside it exactly.
std::pair<at::Tensor, at::Tensor> NormalisedPixelRange(const ModelConfig& config);

}  // namespace psaq::model
