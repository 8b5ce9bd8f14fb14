#include "model/data/preprocess.h"

#include <ATen/ATen.h>

#include <cmath>

namespace psaq::model {
namespace {

void CheckPreprocessConfig(const ModelConfig& config) {
  const PreprocessConfig& p = config.preprocess;
  const int chans = config.in_chans();
  TORCH_CHECK(config.img_size() > 0, "img_size must be positive, got ", config.img_size());
  TORCH_CHECK(chans == 1 || chans == 3, "preprocessing supports in_chans 1 or 3, got ", chans);
  TORCH_CHECK(static_cast<int>(p.mean.size()) == chans && static_cast<int>(p.std.size()) == chans,
              "preprocess mean/std must have in_chans=", chans, " entries, got ", p.mean.size(),
              " and ", p.std.size());
  for (double s : p.std) TORCH_CHECK(s > 0, "preprocess std must be positive, got ", s);
  TORCH_CHECK(p.crop_pct > 0, "crop_pct must be positive, got ", p.crop_pct);
  TORCH_CHECK(
      p.interpolation == "bicubic" || p.interpolation == "bilinear" || p.interpolation == "nearest",
      "unknown interpolation '", p.interpolation, "' (bicubic | bilinear | nearest)");
}

// uint8 [H, W, C] -> uint8 [H, W, chans]. Luma in PIL's 16-bit fixed point, rounded.
at::Tensor MatchChannels(const at::Tensor& hwc, int chans) {
  const int64_t have = hwc.size(2);
  if (have == chans) return hwc;
  if (chans == 3) return hwc.expand({hwc.size(0), hwc.size(1), 3});
  at::Tensor x = hwc.to(at::kInt);
  at::Tensor luma = x.select(2, 0) * 19595 + x.select(2, 1) * 38470 + x.select(2, 2) * 7471 + 32768;
  return luma.div(65536, "floor").to(at::kByte).unsqueeze(2);
}

// float [1, C, H, W] with values in [0, 255] -> [1, C, out_h, out_w], PIL-resampled and
// re-quantised to integer values as PIL's uint8 output is.
at::Tensor Resize(const at::Tensor& x, int64_t out_h, int64_t out_w, const std::string& interp) {
  if (x.size(2) == out_h && x.size(3) == out_w) return x;
  const std::vector<int64_t> size = {out_h, out_w};
  if (interp == "nearest") {
    // PIL's NEAREST samples the source at floor((dst + 0.5) * scale): torch's "nearest-exact".
    return at::_upsample_nearest_exact2d(x, size);
  }
  // The antialiased kernels reproduce PIL's resampling (support scaled by max(scale, 1), bicubic
  // a = -0.5) in both directions; the plain kernels use a = -0.75 and no antialiasing.
  at::Tensor y = interp == "bicubic"
                     ? at::_upsample_bicubic2d_aa(x, size, /*align_corners=*/false)
                     : at::_upsample_bilinear2d_aa(x, size, /*align_corners=*/false);
  return y.clamp(0, 255).add(0.5).floor();
}

// [1, C, H, W] -> [1, C, side, side], torchvision's CenterCrop (zero padding when smaller).
at::Tensor CenterCrop(at::Tensor x, int64_t side) {
  int64_t h = x.size(2), w = x.size(3);
  if (h < side || w < side) {
    const int64_t pad_w = std::max<int64_t>(side - w, 0), pad_h = std::max<int64_t>(side - h, 0);
    x = at::constant_pad_nd(x, {pad_w / 2, (pad_w + 1) / 2, pad_h / 2, (pad_h + 1) / 2}, 0);
    h = x.size(2);
    w = x.size(3);
  }
  // Python's round() rounds half to even, as nearbyint does in the default rounding mode.
  const auto top = static_cast<int64_t>(std::nearbyint((h - side) / 2.0));
  const auto left = static_cast<int64_t>(std::nearbyint((w - side) / 2.0));
  return x.slice(2, top, top + side).slice(3, left, left + side);
}

// float [.., C, H, W] pixel values in [0, 255] -> (x / 255 - mean) / std, float32.
at::Tensor Normalise(const at::Tensor& x, const PreprocessConfig& p) {
  const auto c = static_cast<int64_t>(p.mean.size());
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  at::Tensor mean = at::tensor(p.mean, opts).to(x.device(), at::kFloat).view({c, 1, 1});
  at::Tensor std = at::tensor(p.std, opts).to(x.device(), at::kFloat).view({c, 1, 1});
  return x.div(255).sub(mean).div(std);
}

}  // namespace

at::Tensor PreprocessImage(const at::Tensor& image_hwc_u8, const ModelConfig& config) {
  CheckPreprocessConfig(config);
  const at::Tensor& img = image_hwc_u8;
  TORCH_CHECK(img.scalar_type() == at::kByte, "PreprocessImage expects uint8, got ",
              img.scalar_type());
  TORCH_CHECK(img.dim() == 3, "PreprocessImage expects [H, W, C], got ", img.sizes());
  TORCH_CHECK(img.size(2) == 1 || img.size(2) == 3, "PreprocessImage expects 1 or 3 channels, got ",
              img.size(2));
  TORCH_CHECK(img.size(0) > 0 && img.size(1) > 0, "PreprocessImage got an empty image ",
              img.sizes());
  const int64_t side = config.img_size();
  const PreprocessConfig& p = config.preprocess;

  at::Tensor x = MatchChannels(img, config.in_chans())  // [H, W, C]
                     .permute({2, 0, 1})
                     .unsqueeze(0)
                     .to(at::kFloat)
                     .contiguous();  // [1, C, H, W]
  const int64_t h = x.size(2), w = x.size(3);
  const auto short_target = static_cast<int64_t>(std::floor(side / p.crop_pct));
  TORCH_CHECK(short_target > 0, "floor(img_size / crop_pct) is 0 for img_size ", side, " crop_pct ",
              p.crop_pct);
  // torchvision: the long side becomes int(short_target * long / short), truncated.
  int64_t out_h = short_target, out_w = short_target;
  if (w <= h) {
    out_h = static_cast<int64_t>(static_cast<double>(short_target) * h / w);
  } else {
    out_w = static_cast<int64_t>(static_cast<double>(short_target) * w / h);
  }
  x = Resize(x, out_h, out_w, p.interpolation);
  x = CenterCrop(x, side);
  return Normalise(x.squeeze(0), p).contiguous();  // [C, side, side]
}

at::Tensor PreprocessBatch(const std::vector<at::Tensor>& images_hwc_u8,
                           const ModelConfig& config) {
  if (images_hwc_u8.empty()) {
    CheckPreprocessConfig(config);
    return at::empty({0, config.in_chans(), config.img_size(), config.img_size()}, at::kFloat);
  }
  std::vector<at::Tensor> out;
  out.reserve(images_hwc_u8.size());
  for (const at::Tensor& img : images_hwc_u8) out.push_back(PreprocessImage(img, config));
  return at::stack(out);  // [B, C, H, W]
}

std::pair<at::Tensor, at::Tensor> NormalisedPixelRange(const ModelConfig& config) {
  CheckPreprocessConfig(config);
  const int64_t c = config.in_chans();
  // Pixel values 0 and 255 through the same float32 ops: [C, 1, 2].
  at::Tensor ends = at::tensor({0.0f, 255.0f}).view({1, 1, 2}).expand({c, 1, 2});
  at::Tensor norm = Normalise(ends, config.preprocess);
  return {norm.select(2, 0).reshape({c}).contiguous(), norm.select(2, 1).reshape({c}).contiguous()};
}

}  // namespace psaq::model
