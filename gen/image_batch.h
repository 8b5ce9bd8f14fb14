// A batch of synthetic images under optimisation: the tensor X, its Adam state and the counters
// that, with the job seed, determine every random value still to come (gen/random_streams.h).
// V1 (gen/v1_generator.h) optimises one at a time; V2 (gen/v2_rounds.h) keeps all of a rank's.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gen/adam.h"
#include "model/config.h"

namespace psaq::gen {

struct ImageBatch {
  int64_t first_index = 0;     // global index of row 0; rows are first_index .. first_index + b - 1
  at::Tensor images;           // X: float32 [b, C, H, W] on the run's device, a leaf requiring grad
  std::unique_ptr<Adam> adam;  // the image optimiser; its only tensor is `images`
  int64_t iteration = 0;       // optimiser steps completed in the current phase
  double tv_target = 0;        // the batch's TV target v (gen/random_streams.h BatchTvTarget)
  at::Tensor labels;           // V1: int64 [b] on the device (undefined when not used)

  int64_t size() const { return images.defined() ? images.size(0) : 0; }
  // Global sample indices of the rows: int64 [b] on the CPU.
  at::Tensor Indices() const;
};

struct ImageBatchInit {
  uint64_t seed = 0;            // the job seed
  double init_std = 1.0;        // X = init_std * N(0, 1) per sample (PSAQ: 1)
  bool clamp_init = false;      // clamp X to the normalised pixel box after drawing it
  double tv_target_low = 2500;  // TV target range at 32 x 3 x 224 x 224 (gen/image_prior.h)
  double tv_target_high = 3000;
  bool with_labels = false;  // draw V1's random labels
  AdamOptions adam;          // the image optimiser (lr is set by the schedule each step)
};

// The batch of `count` samples from global index `first_index` for a model with `config`: noise
// per sample index, TV target per first index, labels per sample index (when asked), fresh Adam,
// iteration 0. REQUIRES (TORCH_CHECK): count >= 1, first_index >= 0.
ImageBatch MakeImageBatch(const model::ModelConfig& config, int64_t first_index, int64_t count,
                          const ImageBatchInit& init, const at::Device& device);

// Clamps X in place to the per-channel box [lo, hi] (float32 [C] each; model/data/preprocess.h
// NormalisedPixelRange), outside autograd.
void ClampToBox(at::Tensor& images, const at::Tensor& lo, const at::Tensor& hi);

// The batch's mutable state as named tensors: "<prefix>images" (float32, CPU), "<prefix>info"
// (int64 [3]: first_index, size, iteration) and the Adam state under "<prefix>adam.".
std::vector<std::pair<std::string, at::Tensor>> ExportImageBatch(const ImageBatch& batch,
                                                                 const std::string& prefix);

// Restores what ExportImageBatch wrote into `batch`, which must have been made by MakeImageBatch
// for the same first index and size (labels and TV target are re-derived there). Throws
// std::runtime_error naming `source` for a missing tensor or a mismatch of index, size or shape.
void ImportImageBatch(ImageBatch& batch, const std::map<std::string, at::Tensor>& tensors,
                      const std::string& prefix, const std::string& source);

}  // namespace psaq::gen
