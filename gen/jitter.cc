#include "gen/jitter.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

namespace psaq::gen {

JitterDraw DrawJitter(std::mt19937_64& rng, const JitterOptions& options) {
  TORCH_CHECK(options.max_offset >= 0, "JitterOptions.max_offset must be >= 0, got ",
              options.max_offset);
  TORCH_CHECK(options.flip_probability >= 0 && options.flip_probability <= 1,
              "JitterOptions.flip_probability must be in [0, 1], got ", options.flip_probability);
  JitterDraw draw;
  // Modulo of a 64-bit draw: the bias, (2 lim + 1) / 2^64, is far below anything measurable.
  const uint64_t span = static_cast<uint64_t>(2 * options.max_offset + 1);
  draw.offset = static_cast<int64_t>(rng() % span) - options.max_offset;
  const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;  // [0, 1)
  draw.flip = u < options.flip_probability;
  return draw;
}

at::Tensor ApplyJitter(const at::Tensor& x, const JitterDraw& draw) {
  TORCH_CHECK(x.dim() == 4, "ApplyJitter: expected images [B, C, H, W], got ", x.sizes());
  at::Tensor out = x;
  if (draw.offset != 0) out = at::roll(out, {draw.offset, draw.offset}, {2, 3});
  if (draw.flip) out = at::flip(out, {3});
  return out;
}

at::Tensor RandomJitter(const at::Tensor& x, std::mt19937_64& rng, const JitterOptions& options,
                        JitterDraw* draw_out) {
  const JitterDraw draw = DrawJitter(rng, options);
  if (draw_out != nullptr) *draw_out = draw;
  return ApplyJitter(x, draw);
}

int64_t ScaleJitterLimit(int64_t limit_at_224, int64_t image_size) {
  TORCH_CHECK(limit_at_224 >= 0, "ScaleJitterLimit: limit must be >= 0, got ", limit_at_224);
  TORCH_CHECK(image_size >= 1, "ScaleJitterLimit: image_size must be >= 1, got ", image_size);
  if (limit_at_224 == 0) return 0;
  const double scaled =
      std::round(static_cast<double>(limit_at_224) * static_cast<double>(image_size) /
                 static_cast<double>(kJitterReferenceSize));
  return std::max<int64_t>(1, static_cast<int64_t>(scaled));
}

}  // namespace psaq::gen
