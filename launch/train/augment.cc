#include "launch/train/augment.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include <stdexcept>

#include "dist/partition.h"

namespace psaq::train {
namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;

// Output k (from 0) of the splitmix64 generator seeded with `seed`, as a double in [0, 1) with
// 53 random bits.
double Uniform(uint64_t seed, uint64_t k) {
  const uint64_t bits = dist::SplitMix64(seed + k * kGolden);
  return static_cast<double>(bits >> 11) * (1.0 / 9007199254740992.0);  // 2^-53
}

// floor(u * n) for u in [0, 1), clamped against rounding: an integer in [0, n).
int UniformInt(double u, int n) {
  const int v = static_cast<int>(u * n);
  return v < n ? v : n - 1;
}

}  // namespace

std::string PadModeName(PadMode mode) {
  return mode == PadMode::kConstant ? "constant" : "reflect";
}

PadMode ParsePadMode(const std::string& name) {
  if (name == "constant") return PadMode::kConstant;
  if (name == "reflect") return PadMode::kReflect;
  throw std::invalid_argument("unknown padding mode '" + name + "' (expected constant or reflect)");
}

void ValidateAugment(const AugmentOptions& options) {
  if (options.pad < 0) {
    throw std::invalid_argument("augmentation: pad = " + std::to_string(options.pad) +
                                " must be >= 0");
  }
  if (!(options.flip_prob >= 0 && options.flip_prob <= 1)) {
    throw std::invalid_argument("augmentation: flip_prob = " + std::to_string(options.flip_prob) +
                                " must be in [0, 1]");
  }
}

AugmentDraw DrawAugment(const AugmentOptions& options, uint64_t seed) {
  AugmentDraw draw;
  const int span = 2 * options.pad + 1;  // possible offsets per axis
  draw.top = UniformInt(Uniform(seed, 0), span);
  draw.left = UniformInt(Uniform(seed, 1), span);
  draw.flip = Uniform(seed, 2) < options.flip_prob;
  return draw;
}

at::Tensor AugmentBatch(const at::Tensor& images, const AugmentOptions& options,
                        const at::Tensor& fill, const std::vector<uint64_t>& seeds) {
  ValidateAugment(options);
  TORCH_CHECK(images.dim() == 4, "AugmentBatch: images must be [B, C, H, W], got ", images.sizes());
  TORCH_CHECK(images.is_floating_point(), "AugmentBatch: images must be floating, got ",
              images.scalar_type());
  const int64_t batch = images.size(0), channels = images.size(1);
  const int64_t height = images.size(2), width = images.size(3);
  TORCH_CHECK(static_cast<int64_t>(seeds.size()) == batch, "AugmentBatch: ", seeds.size(),
              " seeds for ", batch, " images");
  const int64_t pad = options.pad;
  c10::NoGradGuard no_grad;

  at::Tensor padded = images;  // [B, C, H + 2p, W + 2p]
  if (pad > 0) {
    if (options.pad_mode == PadMode::kReflect) {
      TORCH_CHECK(pad < height && pad < width, "AugmentBatch: reflect padding ", pad,
                  " needs images larger than that, got ", height, "x", width);
      padded = at::reflection_pad2d(images, {pad, pad, pad, pad});
    } else {
      TORCH_CHECK(fill.defined() && fill.dim() == 1 && fill.size(0) == channels,
                  "AugmentBatch: constant padding needs a fill of [", channels, "] values, got ",
                  fill.defined() ? fill.sizes() : at::IntArrayRef{});
      padded = fill.to(images.options())
                   .view({1, channels, 1, 1})
                   .expand({batch, channels, height + 2 * pad, width + 2 * pad})
                   .clone();
      padded.narrow(2, pad, height).narrow(3, pad, width).copy_(images);
    }
  }

  at::Tensor out = at::empty_like(images, at::MemoryFormat::Contiguous);  // [B, C, H, W]
  for (int64_t k = 0; k < batch; ++k) {
    const AugmentDraw draw = DrawAugment(options, seeds[k]);
    at::Tensor crop =
        padded[k].narrow(1, draw.top, height).narrow(2, draw.left, width);  // [C, H, W]
    if (draw.flip) crop = crop.flip({2});
    out[k].copy_(crop);
  }
  return out;
}

}  // namespace psaq::train
