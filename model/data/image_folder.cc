#include "model/data/image_folder.h"

#include <ATen/ATen.h>
#include <stb/stb_image.h>  // implementation compiled into libstb.so; do not define it here
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

namespace psaq::model {
namespace fs = std::filesystem;
namespace {

// Reads the whole file; returns false with a reason instead of throwing.
bool ReadFile(const std::string& path, std::vector<unsigned char>* bytes, std::string* reason) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *reason = std::string("cannot open: ") + std::strerror(errno);
    return false;
  }
  bytes->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) {
    *reason = "read error";
    return false;
  }
  return true;
}

struct StbFree {
  void operator()(stbi_uc* p) const { stbi_image_free(p); }
};

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
  const std::string& path = paths_[index];
  std::vector<unsigned char> bytes;
  std::string reason;
  if (!ReadFile(path, &bytes, &reason)) {
    *error = path + ": " + reason;
    return false;
  }
  if (bytes.size() > static_cast<size_t>(INT_MAX)) {
    *error = path + ": file larger than 2 GiB";
    return false;
  }
  const int len = static_cast<int>(bytes.size());
  int w = 0, h = 0, comp = 0;
  // stb's failure reason is thread-local, so concurrent decodes do not mix messages up.
  if (stbi_info_from_memory(bytes.data(), len, &w, &h, &comp) == 0) {
    *error = path + ": cannot decode image: " + stbi_failure_reason();
    return false;
  }
  const int want = comp <= 2 ? 1 : 3;
  std::unique_ptr<stbi_uc, StbFree> pixels(
      stbi_load_from_memory(bytes.data(), len, &w, &h, &comp, want));
  if (pixels == nullptr) {
    *error = path + ": cannot decode image: " + stbi_failure_reason();
    return false;
  }
  out->image = at::empty({h, w, want}, at::kByte);  // [H, W, C]
  std::memcpy(out->image.data_ptr<uint8_t>(), pixels.get(), static_cast<size_t>(h) * w * want);
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
  std::vector<unsigned char> bytes;
  for (size_t i = 0; i < paths_.size(); ++i) {
    std::string reason;
    if (!ReadFile(paths_[i], &bytes, &reason)) throw DatasetError(paths_[i] + ": " + reason);
    const std::string& rel = relative_[i];
    crc =
        crc32(crc, reinterpret_cast<const Bytef*>(rel.c_str()), static_cast<uInt>(rel.size() + 1));
    for (size_t off = 0; off < bytes.size(); off += size_t{1} << 30) {
      const auto n = static_cast<uInt>(std::min(bytes.size() - off, size_t{1} << 30));
      crc = crc32(crc, bytes.data() + off, n);
    }
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace psaq::model
