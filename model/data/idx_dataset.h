// Datasets stored as a pair of IDX files (model/data/idx_reader.h): MNIST-style images [N, rows, cols]
// uint8 and labels [N] uint8. FashionMnist names the files of the Fashion-MNIST release
// (https://github.com/zalandoresearch/fashion-mnist; Debian package dataset-fashion-mnist).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "model/data/dataset.h"

namespace psaq::model {

// All pixels are loaded into memory by the constructor (Fashion-MNIST train: 47 MB), so Decode
// cannot fail and ContentChecksum reads no file.
class IdxImageDataset : public ImageDataset {
 public:
  // Reads `images_path` (3-dim IDX) and `labels_path` (1-dim IDX), plain or gzip. `name` labels
  // the dataset in Describe(). Throws DatasetError("<path>: <reason>") for an unreadable or
  // corrupt file (see ReadIdxUint8), for image and label counts that differ, and for a label
  // >= class_names.size() (naming its index). REQUIRES: class_names non-empty.
  IdxImageDataset(std::string images_path, std::string labels_path,
                  std::vector<std::string> class_names, std::string name);

  int64_t size() const override { return images_.size(0); }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  // image: uint8 [rows, cols, 1] (a copy); label: the stored label. Always returns true.
  bool Decode(int64_t index, Sample* out, std::string* error) const override;
  // "<images path>[index]".
  std::string SourceOf(int64_t index) const override;
  std::string Describe() const override;
  // CRC-32 of the image bytes then the label bytes, as decompressed: a gzip file and its plain
  // copy have the same checksum. Cheap (memory only).
  uint32_t ContentChecksum() const override;

  const at::Tensor& images() const { return images_; }  // uint8 [N, rows, cols]
  const at::Tensor& labels() const { return labels_; }  // uint8 [N]

 private:
  std::string images_path_;
  std::string labels_path_;
  std::vector<std::string> class_names_;
  std::string name_;
  at::Tensor images_;  // uint8 [N, rows, cols]
  at::Tensor labels_;  // uint8 [N]
};

// The ten Fashion-MNIST classes in label order: T-shirt/top, Trouser, Pullover, Dress, Coat,
// Sandal, Shirt, Sneaker, Bag, Ankle boot.
const std::vector<std::string>& FashionMnistClassNames();

// Where Debian's dataset-fashion-mnist installs the files.
inline constexpr char kDebianFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";

// Fashion-MNIST split `split` from directory `dir`: "train" (60,000 images) or "test" / "t10k"
// (10,000), read from <dir>/<prefix>-images-idx3-ubyte.gz and <prefix>-labels-idx1-ubyte.gz with
// prefix "train" or "t10k" (the same names without ".gz" when only those exist). Images are
// 28x28, 1 channel. Throws TORCH_CHECK on an unknown split, DatasetError("<dir>: not a
// directory"), DatasetError naming the paths tried when a file is missing, and as
// IdxImageDataset otherwise.
class FashionMnist final : public IdxImageDataset {
 public:
  FashionMnist(const std::string& dir, const std::string& split);
};

}  // namespace psaq::model
