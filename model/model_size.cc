// The state dict of model/vit.cc and model/swin.cc, counted. The test builds models of many
// configs and compares, so a change to the modules that this file misses fails there.
#include "model/model_size.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "dist/base/format.h"

namespace psaq::model {
namespace {

constexpr uint64_t kSaturated = std::numeric_limits<uint64_t>::max();

// Saturating arithmetic: any count past 2^64 reads as "too large", never wraps.
uint64_t Mul(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  return __builtin_mul_overflow(a, b, &r) ? kSaturated : r;
}
uint64_t Add(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  return __builtin_add_overflow(a, b, &r) ? kSaturated : r;
}
uint64_t U(int64_t v) { return v > 0 ? static_cast<uint64_t>(v) : 0; }

struct Counter {
  ModelSize size;
  // `times` copies of `other` (a block, repeated depth times: no loop over the depth).
  void Repeat(const ModelSize& other, uint64_t times) {
    size.tensors = Add(size.tensors, Mul(other.tensors, times));
    size.parameters = Add(size.parameters, Mul(other.parameters, times));
    size.derived = Add(size.derived, Mul(other.derived, times));
  }
  void Tensor(uint64_t elements) {
    size.tensors = Add(size.tensors, 1);
    size.parameters = Add(size.parameters, elements);
  }
  void Linear(uint64_t in, uint64_t out, bool bias) {
    Tensor(Mul(in, out));
    if (bias) Tensor(out);
  }
  void LayerNorm(uint64_t dim) {
    Tensor(dim);
    Tensor(dim);
  }
  // Conv2d(in_chans, dim, p, stride p) with bias.
  void PatchConv(uint64_t in_chans, uint64_t dim, uint64_t p) {
    Tensor(Mul(Mul(dim, in_chans), Mul(p, p)));
    Tensor(dim);
  }
  // norm1, attention (qkv, proj), norm2, MLP (fc1, fc2): a ViT block and most of a Swin block.
  void Block(uint64_t dim, double mlp_ratio, bool qkv_bias) {
    LayerNorm(dim);
    Linear(dim, Mul(3, dim), qkv_bias);
    Linear(dim, dim, true);
    LayerNorm(dim);
    // As the modules do: int(dim * mlp_ratio), computed in double (bounded to avoid UB).
    const double hidden_d = static_cast<double>(dim) * mlp_ratio;
    const uint64_t hidden =
        hidden_d >= 1.8e19 ? kSaturated : static_cast<uint64_t>(std::max(hidden_d, 0.0));
    Linear(dim, hidden, true);
    Linear(hidden, dim, true);
  }
};

ModelSize ViTSize(const ViTConfig& c) {
  Counter n;
  const uint64_t C = U(c.embed_dim);
  const uint64_t grid = c.patch_size > 0 ? U(c.img_size / c.patch_size) : 0;
  n.PatchConv(U(c.in_chans), C, U(c.patch_size));
  n.Tensor(C);                                // cls_token [1, 1, C]
  n.Tensor(Mul(Add(Mul(grid, grid), 1), C));  // pos_embed [1, grid^2 + 1, C]
  Counter block;
  block.Block(C, c.mlp_ratio, c.qkv_bias);
  n.Repeat(block.size, U(c.depth));
  n.LayerNorm(C);
  if (c.num_classes > 0) n.Linear(C, U(c.num_classes), true);
  return n.size;
}

ModelSize SwinSize(const SwinConfig& c) {
  Counter n;
  const uint64_t C = U(c.embed_dim);
  n.PatchConv(U(c.in_chans), C, U(c.patch_size));
  n.LayerNorm(C);  // patch_embed.norm
  uint64_t resolution = c.patch_size > 0 ? U(c.img_size / c.patch_size) : 0;
  uint64_t dim = C;
  const size_t stages = std::min(c.depths.size(), c.num_heads.size());
  for (size_t s = 0; s < stages; ++s) {
    if (s > 0) {  // PatchMerging: norm over 4 * dim, reduction 4 * dim -> 2 * dim without bias
      n.LayerNorm(Mul(4, dim));
      n.Linear(Mul(4, dim), Mul(2, dim), false);
      dim = Mul(2, dim);
      resolution /= 2;
    }
    // timm clips the window to the stage resolution, and then does not shift.
    const uint64_t window = std::min(U(c.window_size), resolution);
    const uint64_t tokens = Mul(window, window);  // per window
    const uint64_t index = Mul(tokens, tokens);   // relative_position_index [W², W²]
    const uint64_t mask = Mul(Mul(resolution, resolution), tokens);  // [nW, W², W²]
    Counter block;
    block.Block(dim, c.mlp_ratio, c.qkv_bias);
    const uint64_t side = window > 0 ? Mul(2, window) - 1 : 0;
    block.Tensor(Mul(Mul(side, side), U(c.num_heads[s])));  // relative_position_bias_table
    block.size.derived = index;
    const uint64_t depth = U(c.depths[s]);
    n.Repeat(block.size, depth);
    // Odd blocks shift (when the window is smaller than the map) and keep a mask.
    const bool shifts = resolution > U(c.window_size) && U(c.window_size) / 2 > 0;
    if (shifts) n.size.derived = Add(n.size.derived, Mul(mask, depth / 2));
  }
  n.LayerNorm(dim);
  if (c.num_classes > 0) n.Linear(dim, U(c.num_classes), true);
  return n.size;
}

}  // namespace

ModelSize ModelSizeOf(const ModelConfig& config) {
  return config.arch == Arch::kViT ? ViTSize(config.vit) : SwinSize(config.swin);
}

void CheckConfigFitsFile(const ModelConfig& config, uint64_t file_tensors, uint64_t file_elements,
                         const std::string& source) {
  const ModelSize size = ModelSizeOf(config);
  const uint64_t max_elements = Add(Mul(kConfigSlackFactor, file_elements), kConfigSlackElements);
  const uint64_t max_tensors = Add(Mul(kConfigSlackFactor, file_tensors), kConfigSlackTensors);
  if (size.tensors > max_tensors || size.parameters > max_elements) {
    const auto count = [](uint64_t v) {
      return v == kSaturated ? std::string("more than 2^64")
                             : base::FormatCount(static_cast<int64_t>(
                                   std::min<uint64_t>(v, std::numeric_limits<int64_t>::max())));
    };
    throw std::runtime_error(source + ": the config describes a model of " +
                             count(size.parameters) + " parameters in " + count(size.tensors) +
                             " tensors, far more than the file holds (" + count(file_elements) +
                             " elements in " + count(file_tensors) + " tensors)");
  }
}

}  // namespace psaq::model
