// Training augmentation on preprocessed image batches: random crop after padding (torchvision
// RandomCrop(size, padding=pad)) and horizontal flip (RandomHorizontalFlip(p)), as used to train
// small ViTs on 28x28 images.
//
// Randomness comes from one 64-bit seed per sample, not from a generator shared by the batch:
// sample k of a batch is augmented the same way whichever rank, batch split or thread count
// processes it. The trainer derives the seed from the job seed and the sample's position in the
// global order (dist::DeriveSeed), so a data-parallel run augments exactly as a one-rank run.
//
//   std::vector<uint64_t> seeds = ...;                        // one per row
//   at::Tensor out = AugmentBatch(images, options, fill, seeds);
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace psaq::train {

enum class PadMode {
  kConstant,  // pad with `fill` (the trainer passes the normalised value of a black pixel)
  kReflect,   // reflect without repeating the edge (torch reflection_pad2d, numpy "reflect")
};

// "constant" / "reflect", and back (throws std::invalid_argument listing both otherwise).
std::string PadModeName(PadMode mode);
PadMode ParsePadMode(const std::string& name);

struct AugmentOptions {
  // Pixels added on each side before cropping back to the original size; the crop's top-left
  // corner is drawn uniformly from [0, 2 * pad] in each axis. 0 disables the crop. Default 2
  // (timm/torchvision practice for 28x28: pad 2 or 4). kReflect needs pad < H and pad < W.
  int pad = 2;
  // How the border is filled. Default kConstant (torchvision's default, zero pixels).
  PadMode pad_mode = PadMode::kConstant;
  // Probability of a horizontal flip, in [0, 1]. Default 0.5. 0 disables it.
  double flip_prob = 0.5;
};

// The random choices for one sample, a pure function of (options, seed).
struct AugmentDraw {
  int top = 0;        // crop offset into the padded image, in [0, 2 * pad]; pad = no shift
  int left = 0;       // likewise
  bool flip = false;  // flip horizontally (after cropping)
};
AugmentDraw DrawAugment(const AugmentOptions& options, uint64_t seed);

// Throws std::invalid_argument naming the field for pad < 0 or flip_prob outside [0, 1].
void ValidateAugment(const AugmentOptions& options);

// images: [B, C, H, W], floating, any device. fill: [C] (same dtype and device), used by
// kConstant only (may be undefined for kReflect). seeds: B values. Returns a new [B, C, H, W]
// tensor: row k is images[k] padded, cropped at DrawAugment(options, seeds[k]) and maybe flipped.
// Throws (TORCH_CHECK / std::invalid_argument) on a wrong rank, seed count, fill shape, or
// invalid options. Does not record autograd history of `images` (inputs are data).
at::Tensor AugmentBatch(const at::Tensor& images, const AugmentOptions& options,
                        const at::Tensor& fill, const std::vector<uint64_t>& seeds);

}  // namespace psaq::train
