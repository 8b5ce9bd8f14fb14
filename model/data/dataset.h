// Labelled image datasets with random access, and the batch builder that decodes and preprocesses
// a list of indices.
//
// A dataset is opened once (its index, or for IDX files all of its pixels, is read by the
// constructor, which throws DatasetError("<path>: <reason>") for a missing, empty or corrupt
// source). Individual images are decoded on demand by Decode(), which never throws for a
// malformed image: it returns false and an error naming the file, so the caller decides, by its
// own policy (a user flag), whether to skip the sample with a warning or to fail the run.
//
// Implementations: FashionMnist / IdxImageDataset (model/data/idx_dataset.h) and ImageFolder
// (model/data/image_folder.h).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/config.h"

namespace psaq::model {

// A dataset file or directory that cannot be used: missing, unreadable, empty or corrupt.
class DatasetError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Sample {
  at::Tensor image;    // uint8 [H, W, C], C = 1 or 3, CPU, contiguous
  int64_t label = -1;  // class index in [0, num_classes())
};

class ImageDataset {
 public:
  virtual ~ImageDataset() = default;

  // Number of samples.
  virtual int64_t size() const = 0;
  // Class names, indexed by label.
  virtual const std::vector<std::string>& class_names() const = 0;
  int64_t num_classes() const { return static_cast<int64_t>(class_names().size()); }

  // Decodes sample `index` into *out. On a malformed or unreadable image returns false and sets
  // *error to "<source>: <reason>" (nothing is thrown); *out is then unspecified.
  // REQUIRES: 0 <= index < size() (TORCH_CHECK), out and error non-null.
  // Thread-safe: concurrent calls on one dataset are allowed.
  virtual bool Decode(int64_t index, Sample* out, std::string* error) const = 0;

  // Where sample `index` comes from, for messages: a file path, or "<images file>[index]".
  virtual std::string SourceOf(int64_t index) const = 0;

  // One line for logs, e.g. "fashion-mnist test: 10000 images, 10 classes (/usr/share/...)".
  virtual std::string Describe() const = 0;

  // CRC-32 (zlib) of the dataset's raw content in sample order, for recording in metadata: equal
  // checksums mean the same images (as stored bytes) with the same labels in the same order. See
  // each implementation for exactly which bytes it covers and what it costs.
  // Throws DatasetError naming a file that can no longer be read.
  virtual uint32_t ContentChecksum() const = 0;
};

// "crc32:%08x", the form recorded in metadata.
std::string FormatChecksum(uint32_t crc);

struct DecodeFailure {
  int64_t index = -1;  // dataset index
  std::string error;   // "<source>: <reason>"
};

struct Batch {
  at::Tensor images;                    // float32 [B, in_chans, img_size, img_size], preprocessed
  at::Tensor labels;                    // int64 [B]
  std::vector<int64_t> indices;         // [B] dataset index of each row, in request order
  std::vector<DecodeFailure> failures;  // the requested indices that did not decode, in order
};

// Decodes `indices` (in order; repeats allowed) and preprocesses them for `config`
// (PreprocessImage). Indices that fail to decode are left out of the batch and listed in
// `failures`, so B = indices.size() - failures.size(); when every index fails, images is
// [0, in_chans, img_size, img_size]. The caller applies its skip-or-fail policy to `failures`.
// Throws (TORCH_CHECK) on an index out of range or an invalid preprocessing config.
Batch MakeBatch(const ImageDataset& dataset, const std::vector<int64_t>& indices,
                const ModelConfig& config);

}  // namespace psaq::model
