// Hand-made datasets and "models" whose answers are known, for the evaluation tests.
//
// CodedDataset: image i is a 4x4 grey image whose every pixel holds code[i] (0..9), labelled
// label[i]. CodedForward reads the code back from the preprocessed batch (mean 0, std 1, so a
// pixel is code / 255) and returns logits[c] = -((c - code) mod 10): the top-1 class is the code,
// and the top-5 classes are code, code+1, ..., code+4 (mod 10). So image i is a top-1 hit when
// label == code and a top-5 hit when (label - code) mod 10 < 5.
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "model/config.h"
#include "model/data/dataset.h"

namespace psaq::testing {

// 4x4 single-channel input, 10 classes, identity preprocessing (mean 0, std 1, crop 1).
inline model::ModelConfig CodedConfig(int num_classes = 10) {
  model::ModelConfig c;
  c.name = "coded";
  c.arch = model::Arch::kViT;
  c.vit.img_size = 4;
  c.vit.patch_size = 4;
  c.vit.in_chans = 1;
  c.vit.num_classes = num_classes;
  c.vit.embed_dim = 8;
  c.vit.depth = 1;
  c.vit.num_heads = 1;
  c.preprocess.mean = {0.0};
  c.preprocess.std = {1.0};
  c.preprocess.crop_pct = 1.0;
  return c;
}

class CodedDataset : public model::ImageDataset {
 public:
  // `broken`: indices whose Decode fails.
  CodedDataset(std::vector<int> codes, std::vector<int> labels, int num_classes = 10,
               std::vector<int64_t> broken = {})
      : codes_(std::move(codes)), labels_(std::move(labels)), broken_(std::move(broken)) {
    for (int c = 0; c < num_classes; ++c) names_.push_back("class" + std::to_string(c));
  }
  int64_t size() const override { return static_cast<int64_t>(codes_.size()); }
  const std::vector<std::string>& class_names() const override { return names_; }
  bool Decode(int64_t index, model::Sample* out, std::string* error) const override {
    for (int64_t b : broken_) {
      if (b == index) {
        *error = SourceOf(index) + ": corrupt";
        return false;
      }
    }
    out->image = at::full({4, 4, 1}, codes_[index], at::kByte);
    out->label = labels_[index];
    return true;
  }
  std::string SourceOf(int64_t index) const override {
    return "coded[" + std::to_string(index) + "]";
  }
  std::string Describe() const override { return "coded: " + std::to_string(size()) + " images"; }
  uint32_t ContentChecksum() const override { return 0; }

 private:
  std::vector<int> codes_;
  std::vector<int> labels_;
  std::vector<int64_t> broken_;
  std::vector<std::string> names_;
};

// x: [B, 1, 4, 4] -> logits [B, 10] with logits[b, c] = -((c - code_b) mod 10).
inline at::Tensor CodedForward(const at::Tensor& x) {
  const at::Tensor code = at::round(x.select(1, 0).select(1, 0).select(1, 0) * 255).to(at::kLong);
  const at::Tensor c = at::arange(10, at::kLong).unsqueeze(0);      // [1, 10]
  return -at::remainder(c - code.unsqueeze(1), 10).to(at::kFloat);  // [B, 10]
}

// `n` random 16x16 RGB images with random labels in [0, 10) (seeded, so equal on every rank and
// every call); the indices in `broken` fail to decode.
class RandomDataset : public model::ImageDataset {
 public:
  RandomDataset(int64_t n, std::vector<int64_t> broken) : broken_(std::move(broken)) {
    at::manual_seed(1234);
    images_ = at::randint(0, 256, {n, 16, 16, 3}, at::kLong).to(at::kByte);
    labels_ = at::randint(0, 10, {n}, at::kLong);
    for (int c = 0; c < 10; ++c) names_.push_back(std::to_string(c));
  }
  int64_t size() const override { return images_.size(0); }
  const std::vector<std::string>& class_names() const override { return names_; }
  bool Decode(int64_t index, model::Sample* out, std::string* error) const override {
    for (int64_t b : broken_) {
      if (b == index) {
        *error = SourceOf(index) + ": corrupt";
        return false;
      }
    }
    out->image = images_[index].clone();
    out->label = labels_[index].item<int64_t>();
    return true;
  }
  std::string SourceOf(int64_t index) const override {
    return "random[" + std::to_string(index) + "]";
  }
  std::string Describe() const override { return "random"; }
  uint32_t ContentChecksum() const override { return 0; }

 private:
  at::Tensor images_;
  at::Tensor labels_;
  std::vector<int64_t> broken_;
  std::vector<std::string> names_;
};

// A world of one rank, for unit tests without MPI.
class LocalCommunicator final : public dist::Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "local"; }
  void AllReduce(at::Tensor&, dist::ReduceOp) override {}
  void Broadcast(at::Tensor&, int) override {}
  at::Tensor AllGather(const at::Tensor& t) override { return t.clone(); }
  void Barrier() override {}
  double seconds_in_collectives() const override { return 0; }
};

}  // namespace psaq::testing
