#include "model/data/image_folder.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <stb/stb_image.h>  // implementation compiled into libstb.so; do not define it here
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "dist/base/format.h"
#include "model/data/jpeg_check.h"

namespace psaq::model {
namespace fs = std::filesystem;
namespace {

// Reads the whole file, refusing before reading anything but a regular file of at most
// kMaxImageFileBytes (O_NONBLOCK: a FIFO put in an image's place is refused, not waited on);
// returns false with a reason instead of throwing.
bool ReadImageFile(const std::string& path, std::vector<unsigned char>* bytes,
                   std::string* reason) {
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *reason = std::string("cannot open: ") + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    *reason = std::string("cannot stat: ") + std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    *reason = "not a regular file";
  } else if (st.st_size > kMaxImageFileBytes) {
    *reason = "file of " + base::FormatCount(st.st_size) + " bytes, more than the " +
              base::FormatBytes(kMaxImageFileBytes) + " an image file may hold";
  } else {
    // One byte more than fstat said, to notice a file that grew since.
    bytes->resize(static_cast<size_t>(st.st_size) + 1);
    size_t have = 0;
    while (have < bytes->size()) {
      const ssize_t got = read(fd, bytes->data() + have, bytes->size() - have);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        *reason = std::string("read error: ") + std::strerror(errno);
        break;
      }
      if (got == 0) break;
      have += static_cast<size_t>(got);
    }
    bytes->resize(have);
    if (reason->empty() && have > static_cast<size_t>(st.st_size)) {
      *reason = "the file grew while it was read";
    }
  }
  close(fd);
  return reason->empty();
}

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
  if (!ReadImageFile(path, &bytes, &reason)) {
    *error = path + ": " + reason;
    return false;
  }
  static_assert(kMaxImageFileBytes <= INT_MAX, "stb_image takes the length as an int");
  const int len = static_cast<int>(bytes.size());
  // stb_image 2.27 overflows its tables on some crafted JPEG Huffman tables (jpeg_check.h).
  if (!CheckJpegHuffmanTables(bytes.data(), bytes.size(), &reason)) {
    *error = path + ": " + reason;
    return false;
  }
  int w = 0, h = 0, comp = 0;
  // The header only: the declared size is checked before anything is decoded or allocated.
  // stb's failure reason is thread-local, so concurrent decodes do not mix messages up.
  if (stbi_info_from_memory(bytes.data(), len, &w, &h, &comp) == 0) {
    *error = path + ": cannot decode image: " + stbi_failure_reason();
    return false;
  }
  if (static_cast<int64_t>(w) * h > kMaxImagePixels) {
    *error = path + ": image of " + std::to_string(w) + "x" + std::to_string(h) +
             " pixels, more than the " + std::to_string(kMaxImagePixels >> 20) +
             " Mpixel an image may have";
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
