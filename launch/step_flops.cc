#include "launch/step_flops.h"

#include <algorithm>

namespace psaq::launch {
namespace {

// One transformer block on `tokens` tokens of width d, attention over `attended` tokens each.
double BlockFlops(double tokens, double attended, double d, double mlp_ratio) {
  const double hidden = static_cast<double>(static_cast<int64_t>(d * mlp_ratio));
  return 2 * tokens * d * 3 * d + 2 * 2 * tokens * attended * d + 2 * tokens * d * d +
         2 * 2 * tokens * d * hidden;
}

}  // namespace

double ForwardFlopsPerImage(const model::ModelConfig& config) {
  if (config.arch == model::Arch::kViT) {
    const model::ViTConfig& c = config.vit;
    const double grid = c.img_size / c.patch_size;
    const double n = grid * grid + 1;
    const double d = c.embed_dim;
    double flops = 2 * (n - 1) * c.in_chans * c.patch_size * c.patch_size * d;
    flops += c.depth * BlockFlops(n, n, d, c.mlp_ratio);
    return flops + 2 * d * c.num_classes;
  }
  const model::SwinConfig& c = config.swin;
  int side = c.img_size / c.patch_size;
  double d = c.embed_dim;
  double flops = 2.0 * side * side * c.in_chans * c.patch_size * c.patch_size * d;
  for (size_t stage = 0; stage < c.depths.size(); ++stage) {
    if (stage > 0) {
      side /= 2;
      flops += 2.0 * side * side * 4 * d * 2 * d;
      d *= 2;
    }
    const double tokens = static_cast<double>(side) * side;
    const int window = std::min(c.window_size, side);
    flops += c.depths[stage] * BlockFlops(tokens, window * window, d, c.mlp_ratio);
  }
  return flops + 2 * d * c.num_classes;
}

}  // namespace psaq::launch
