#include "model/data/image_folder.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace psaq::model {
namespace fs = std::filesystem;
namespace {

// Feeds the file's bytes to the CRC in chunks (no size limit, no whole-file buffer).
bool CrcFile(const std::string& path, uLong* crc, std::string* reason) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *reason = std::string("cannot open: ") + std::strerror(errno);
    return false;
  }
  std::vector<char> buf(size_t{1} << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = static_cast<uInt>(in.gcount());
    if (got > 0) *crc = crc32(*crc, reinterpret_cast<const Bytef*>(buf.data()), got);
  }
  if (in.bad()) {
    *reason = "read error";
    return false;
  }
  return true;
}

}  // namespace

bool IsImageFileName(const std::string& file_name) {
  std::string lower(file_name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* ext : {".jpg", ".jpeg", ".png"}) {
    const size_t n = std::strlen(ext);
    if (lower.size() >= n && lower.compare(lower.size() - n, n, ext) == 0) return true;
  }
  return false;
}

ImageFolder::ImageFolder(const std::string& root) : root_(root) {
  std::error_code ec;
  if (!fs::is_directory(root_, ec)) throw DatasetError(root_ + ": not a directory");
  for (fs::directory_iterator it(root_, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code dir_ec;
    if (it->is_directory(dir_ec)) class_names_.push_back(it->path().filename().string());
  }
  if (ec) throw DatasetError(root_ + ": cannot list: " + ec.message());
  if (class_names_.empty()) throw DatasetError(root_ + ": no class subdirectories");
  std::sort(class_names_.begin(), class_names_.end());

  std::string empty_classes;
  for (size_t label = 0; label < class_names_.size(); ++label) {
    const fs::path class_dir = fs::path(root_) / class_names_[label];
    // (containing directory, file name): torchvision's sorted(os.walk(...)) then sorted(fnames).
    std::vector<std::pair<std::string, std::string>> files;
    fs::recursive_directory_iterator it(class_dir, fs::directory_options::none, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
      std::error_code file_ec;
      const std::string name = it->path().filename().string();
      if (it->is_regular_file(file_ec) && IsImageFileName(name)) {
        files.emplace_back(it->path().parent_path().string(), name);
      }
    }
    if (ec) throw DatasetError(class_dir.string() + ": cannot list: " + ec.message());
    if (files.empty()) {
      empty_classes += (empty_classes.empty() ? "" : ", ") + class_names_[label];
      continue;
    }
    std::sort(files.begin(), files.end());
    for (const auto& [dir, name] : files) {
      const fs::path full = fs::path(dir) / name;
      paths_.push_back(full.string());
      relative_.push_back(full.lexically_relative(root_).generic_string());
      labels_.push_back(static_cast<int64_t>(label));
    }
  }
  if (!empty_classes.empty()) {
    throw DatasetError(root_ + ": no .jpg/.jpeg/.png file for the classes " + empty_classes);
  }
}

int64_t ImageFolder::label(int64_t index) const {
  TORCH_CHECK(index >= 0 && index < size(), "dataset index ", index, " out of range [0, ", size(),
              ")");
  return labels_[index];
}

bool ImageFolder::Decode(int64_t index, Sample* out, std::string* error) const {
  TORCH_CHECK(out != nullptr && error != nullptr, "Decode: null output");
  const int64_t lbl = label(index);
  if (!DecodeImageFile(paths_[index], ImageChannels::kAsStored, &out->image, error)) return false;
  out->label = lbl;
  return true;
}

std::string ImageFolder::SourceOf(int64_t index) const {
  TORCH_CHECK(index >= 0 && index < size(), "dataset index ", index, " out of range [0, ", size(),
              ")");
  return paths_[index];
}

std::string ImageFolder::Describe() const {
  return "image folder: " + std::to_string(size()) + " images, " + std::to_string(num_classes()) +
         " classes (" + root_ + ")";
}

uint32_t ImageFolder::ContentChecksum() const {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (size_t i = 0; i < paths_.size(); ++i) {
    const std::string& rel = relative_[i];
    crc =
        crc32(crc, reinterpret_cast<const Bytef*>(rel.c_str()), static_cast<uInt>(rel.size() + 1));
    std::string reason;
    if (!CrcFile(paths_[i], &crc, &reason)) throw DatasetError(paths_[i] + ": " + reason);
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace psaq::model
