// Fuzz target "idx": the input is one IDX file (plain or gzip; model/data/idx_reader.h), read the
// ways psaq reads Fashion-MNIST:
//   1. model::ReadIdxUint8 as an image file (3 dims) and as a label file (1 dim);
//   2. when it reads as images [N, rows, cols] with N <= kMaxPairedItems, paired with a valid
//      label file of N zeros into a model::IdxImageDataset, and its first and last images
//      decoded and preprocessed (model::MakeBatch) as `psaq eval` does;
//   3. when it reads as labels [N], paired the same way with N valid 1x1 images (the dataset's
//      label check sees the fuzzed labels).
// Seeds: tests/fuzz/corpus/idx (the first images and labels of Debian's Fashion-MNIST test split,
// plain and gzip, written by make_fuzz_corpus).
#include <ATen/ATen.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/data/dataset.h"
#include "model/data/idx_dataset.h"
#include "model/data/idx_reader.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

constexpr char kTarget[] = "idx";
// Pairing writes a partner file of this many items at most (larger inputs are still read in 1.).
constexpr int64_t kMaxPairedItems = 4096;

// A valid uint8 IDX file: dims big-endian after the magic, then `fill` for every element.
std::vector<uint8_t> IdxBytes(const std::vector<uint32_t>& dims, uint8_t fill) {
  std::vector<uint8_t> bytes = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  size_t count = 1;
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<uint8_t>(d >> shift));
    count *= d;
  }
  bytes.resize(bytes.size() + count, fill);
  return bytes;
}

// The Fashion-MNIST models' preprocessing, with a resize so that odd sizes go through it.
const psaq::model::ModelConfig& EvalConfig() {
  static const psaq::model::ModelConfig config = [] {
    psaq::model::ModelConfig c;
    c.arch = psaq::model::Arch::kViT;
    c.vit.img_size = 28;
    c.vit.patch_size = 4;
    c.vit.in_chans = 1;
    c.vit.num_classes = 10;
    c.preprocess.mean = {0.2860};
    c.preprocess.std = {0.3530};
    c.preprocess.crop_pct = 0.875;
    c.preprocess.interpolation = "bilinear";
    return c;
  }();
  return config;
}

void CheckBatch(const psaq::model::Batch& batch, size_t requested) {
  const auto& c = EvalConfig();
  const int64_t rows = static_cast<int64_t>(requested - batch.failures.size());
  if (batch.images.sizes() != at::IntArrayRef({rows, 1, c.img_size(), c.img_size()})) {
    psaq::fuzz::Fail(kTarget, "batch of shape " + std::string(c10::str(batch.images.sizes())));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace psaq;
  fuzz::SetUpProcess();
  const std::string path = fuzz::WriteScratch("input-idx", data, size);

  at::Tensor images;
  if (fuzz::Parses(kTarget, [&] { images = model::ReadIdxUint8(path, 3); }) &&
      images.size(0) <= kMaxPairedItems) {
    const int64_t n = images.size(0);
    const std::vector<uint8_t> labels = IdxBytes({static_cast<uint32_t>(n)}, 0);
    const std::string labels_path = fuzz::WriteScratch("labels-idx", labels.data(), labels.size());
    fuzz::Parses(kTarget, [&] {
      const model::IdxImageDataset dataset(path, labels_path, model::FashionMnistClassNames(),
                                           "fuzz");
      CheckBatch(model::MakeBatch(dataset, {0, n - 1}, EvalConfig()), 2);
    });
  }

  at::Tensor labels;
  if (fuzz::Parses(kTarget, [&] { labels = model::ReadIdxUint8(path, 1); }) &&
      labels.size(0) <= kMaxPairedItems) {
    const int64_t n = labels.size(0);
    const std::vector<uint8_t> pixels = IdxBytes({static_cast<uint32_t>(n), 1, 1}, 128);
    const std::string images_path = fuzz::WriteScratch("images-idx", pixels.data(), pixels.size());
    fuzz::Parses(kTarget, [&] {
      const model::IdxImageDataset dataset(images_path, path, model::FashionMnistClassNames(),
                                           "fuzz");
      CheckBatch(model::MakeBatch(dataset, {0, n - 1}, EvalConfig()), 2);
    });
  }
  return 0;
}
