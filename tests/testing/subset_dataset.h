// The first `n` samples of another dataset, for fast training tests on real images.
#pragma once

#include <c10/util/Exception.h>

#include <algorithm>
#include <string>
#include <vector>

#include "model/data/dataset.h"

namespace psaq::testing {

class SubsetDataset final : public model::ImageDataset {
 public:
  // REQUIRES: `inner` outlives this object; 0 <= n.
  SubsetDataset(const model::ImageDataset& inner, int64_t n)
      : inner_(inner), n_(std::min(n, inner.size())) {}

  int64_t size() const override { return n_; }
  const std::vector<std::string>& class_names() const override { return inner_.class_names(); }
  bool Decode(int64_t index, model::Sample* out, std::string* error) const override {
    TORCH_CHECK(index >= 0 && index < n_, "SubsetDataset: index ", index, " out of range");
    return inner_.Decode(index, out, error);
  }
  std::string SourceOf(int64_t index) const override { return inner_.SourceOf(index); }
  std::string Describe() const override {
    return "first " + std::to_string(n_) + " of " + inner_.Describe();
  }
  uint32_t ContentChecksum() const override {
    TORCH_CHECK(false, "SubsetDataset: no content checksum (test helper)");
  }

 private:
  const model::ImageDataset& inner_;
  int64_t n_;
};

}  // namespace psaq::testing
