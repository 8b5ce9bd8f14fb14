#include "model/data/idx_dataset.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <utility>

#include "model/data/idx_reader.h"

namespace psaq::model {
namespace {

uint32_t Crc32Update(uint32_t crc, const at::Tensor& bytes) {
  TORCH_INTERNAL_ASSERT(bytes.is_contiguous() && bytes.scalar_type() == at::kByte);
  const auto* p = bytes.data_ptr<uint8_t>();
  size_t left = static_cast<size_t>(bytes.numel());
  uLong c = crc;
  while (left > 0) {  // crc32 takes a 32-bit length
    const auto n = static_cast<uInt>(std::min<size_t>(left, size_t{1} << 30));
    c = crc32(c, p, n);
    p += n;
    left -= n;
  }
  return static_cast<uint32_t>(c);
}

std::string SplitPrefix(const std::string& split) {
  if (split == "train") return "train";
  if (split == "test" || split == "t10k") return "t10k";
  TORCH_CHECK(false, "unknown Fashion-MNIST split '", split, "' (train | test | t10k)");
}

// <dir>/<stem>.gz, else <dir>/<stem>; throws naming both when neither exists.
std::string FindIdxFile(const std::string& dir, const std::string& stem) {
  const std::filesystem::path base = std::filesystem::path(dir) / stem;
  const std::string gz = base.string() + ".gz";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) throw DatasetError(dir + ": not a directory");
  if (std::filesystem::is_regular_file(gz, ec)) return gz;
  if (std::filesystem::is_regular_file(base, ec)) return base.string();
  throw DatasetError(gz + ": not found (nor " + base.string() + ")");
}

}  // namespace

IdxImageDataset::IdxImageDataset(std::string images_path, std::string labels_path,
                                 std::vector<std::string> class_names, std::string name)
    : images_path_(std::move(images_path)),
      labels_path_(std::move(labels_path)),
      class_names_(std::move(class_names)),
      name_(std::move(name)) {
  TORCH_CHECK(!class_names_.empty(), "IdxImageDataset needs at least one class name");
  images_ = ReadIdxUint8(images_path_, 3);
  labels_ = ReadIdxUint8(labels_path_, 1);
  if (labels_.size(0) != images_.size(0)) {
    throw DatasetError(labels_path_ + ": " + std::to_string(labels_.size(0)) + " labels for the " +
                       std::to_string(images_.size(0)) + " images of " + images_path_);
  }
  const auto k = static_cast<int64_t>(class_names_.size());
  const at::Tensor over = labels_.ge(k);  // [N] bool
  if (over.any().item<bool>()) {
    const int64_t first = over.to(at::kInt).argmax().item<int64_t>();
    throw DatasetError(labels_path_ + ": label " + std::to_string(labels_[first].item<int64_t>()) +
                       " at index " + std::to_string(first) + " is not below the " +
                       std::to_string(k) + " classes");
  }
}

bool IdxImageDataset::Decode(int64_t index, Sample* out, std::string* error) const {
  TORCH_CHECK(out != nullptr && error != nullptr, "Decode: null output");
  TORCH_CHECK(index >= 0 && index < size(), "dataset index ", index, " out of range [0, ", size(),
              ")");
  out->image = images_[index].unsqueeze(2).clone();  // [rows, cols, 1]
  out->label = labels_[index].item<int64_t>();
  return true;
}

std::string IdxImageDataset::SourceOf(int64_t index) const {
  return images_path_ + "[" + std::to_string(index) + "]";
}

std::string IdxImageDataset::Describe() const {
  return name_ + ": " + std::to_string(size()) + " images " + std::to_string(images_.size(1)) +
         "x" + std::to_string(images_.size(2)) + ", " + std::to_string(num_classes()) +
         " classes (" + images_path_ + ")";
}

uint32_t IdxImageDataset::ContentChecksum() const {
  const uint32_t crc = Crc32Update(static_cast<uint32_t>(crc32(0L, Z_NULL, 0)), images_);
  return Crc32Update(crc, labels_);
}

const std::vector<std::string>& FashionMnistClassNames() {
  static const std::vector<std::string> kNames = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                  "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                  "Bag",         "Ankle boot"};
  return kNames;
}

FashionMnist::FashionMnist(const std::string& dir, const std::string& split)
    : IdxImageDataset(FindIdxFile(dir, SplitPrefix(split) + "-images-idx3-ubyte"),
                      FindIdxFile(dir, SplitPrefix(split) + "-labels-idx1-ubyte"),
                      FashionMnistClassNames(), "fashion-mnist " + split) {}

}  // namespace psaq::model
