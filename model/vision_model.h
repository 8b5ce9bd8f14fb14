// The interface every float model implements (ViT/DeiT in model/vit.h, Swin in model/swin.h).
//
// A VisionModel is a torch::nn::Module whose parameter and persistent-buffer names are exactly
// timm's, so a timm state dict loads as is (model/state_dict.h). It is float-only and knows
// nothing of quantization or ranks; quant/ and gen/ reach inside through its TapSet.
#pragma once

#include <torch/nn/module.h>

#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/tap.h"

namespace psaq::model {

class VisionModel : public torch::nn::Module {
 public:
  // x: [B, in_chans, img_size, img_size], normalised (mean/std), float32 or float64.
  // Returns logits [B, num_classes] (or pooled features [B, C] when num_classes == 0).
  virtual at::Tensor forward(const at::Tensor& x) = 0;

  const ModelConfig& config() const { return config_; }
  TapSet& taps() { return *taps_; }
  const TapSet& taps() const { return *taps_; }

  // Paths of the attention blocks in forward order ("blocks.3", "layers.2.blocks.1"); the feature
  // taps of block i are "<path>.av_mean" and "<path>.out".
  const std::vector<std::string>& block_paths() const { return block_paths_; }

 protected:
  explicit VisionModel(ModelConfig config)
      : config_(std::move(config)), taps_(std::make_shared<TapSet>()) {}
  std::shared_ptr<TapSet> shared_taps() const { return taps_; }
  void AddBlockPath(std::string path) { block_paths_.push_back(std::move(path)); }

 private:
  ModelConfig config_;
  std::shared_ptr<TapSet> taps_;
  std::vector<std::string> block_paths_;
};

using ModelPtr = std::shared_ptr<VisionModel>;

}  // namespace psaq::model
