#include "model/data/dataset.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstdio>

#include "model/data/preprocess.h"

namespace psaq::model {

std::string FormatChecksum(uint32_t crc) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "crc32:%08x", static_cast<unsigned>(crc));
  return buf;
}

Batch MakeBatch(const ImageDataset& dataset, const std::vector<int64_t>& indices,
                const ModelConfig& config) {
  const auto n = static_cast<int64_t>(indices.size());
  for (int64_t i : indices) {
    TORCH_CHECK(i >= 0 && i < dataset.size(), "dataset index ", i, " out of range [0, ",
                dataset.size(), ")");
  }
  // Each slot is written by one task only, so the result does not depend on the thread count.
  std::vector<at::Tensor> rows(n);
  std::vector<int64_t> labels(n, -1);
  std::vector<std::string> errors(n);
  std::vector<char> ok(n, 0);
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      Sample sample;
      if (!dataset.Decode(indices[k], &sample, &errors[k])) continue;
      rows[k] = PreprocessImage(sample.image, config);  // [C, S, S]
      labels[k] = sample.label;
      ok[k] = 1;
    }
  });

  Batch batch;
  std::vector<at::Tensor> kept;
  std::vector<int64_t> kept_labels;
  for (int64_t k = 0; k < n; ++k) {
    if (ok[k]) {
      kept.push_back(rows[k]);
      kept_labels.push_back(labels[k]);
      batch.indices.push_back(indices[k]);
    } else {
      batch.failures.push_back({indices[k], std::move(errors[k])});
    }
  }
  batch.images = PreprocessBatch({}, config);  // validates config; the empty shape when none kept
  if (!kept.empty()) batch.images = at::stack(kept);                             // [B, C, S, S]
  batch.labels = at::tensor(kept_labels, at::TensorOptions().dtype(at::kLong));  // [B]
  return batch;
}

}  // namespace psaq::model
