#include "model/data/image_file.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <stb/stb_image.h>  // implementation compiled into libstb.so; do not define it here
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "dist/base/format.h"
#include "model/data/stb_precheck.h"

namespace psaq::model {
namespace {

// Opens `path` read-only without blocking (O_NONBLOCK: a FIFO put in an image's place is refused,
// not waited on) and refuses anything but a regular file of at most kMaxImageFileBytes. Returns
// the descriptor, or -1 with a reason.
int OpenImageFile(const std::string& path, struct stat* st, std::string* reason) {
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *reason = std::string("cannot open: ") + std::strerror(errno);
    return -1;
  }
  if (fstat(fd, st) != 0) {
    *reason = std::string("cannot stat: ") + std::strerror(errno);
  } else if (!S_ISREG(st->st_mode)) {
    *reason = "not a regular file";
  } else if (st->st_size > kMaxImageFileBytes) {
    *reason = "file of " + base::FormatCount(st->st_size) + " bytes, more than the " +
              base::FormatBytes(kMaxImageFileBytes) + " an image file may hold";
  }
  if (!reason->empty()) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads the whole file (see OpenImageFile); returns false with a reason instead of throwing.
bool ReadImageFile(const std::string& path, std::vector<unsigned char>* bytes,
                   std::string* reason) {
  struct stat st {};
  const int fd = OpenImageFile(path, &st, reason);
  if (fd < 0) return false;
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
  close(fd);
  return reason->empty();
}

struct StbFree {
  void operator()(stbi_uc* p) const { stbi_image_free(p); }
};

// Reads the file, runs the checks stb_image needs (stb_precheck.h: version 2.27 trusts some
// crafted JPEG and PNG headers) and reads the header's size and channels, nothing decoded yet.
// False with *error = "<path>: <reason>".
bool ReadImageHeader(const std::string& path, std::vector<unsigned char>* bytes, int* w, int* h,
                     int* comp, std::string* error) {
  std::string reason;
  if (!ReadImageFile(path, bytes, &reason) ||
      !PrecheckForStb(bytes->data(), bytes->size(), &reason)) {
    *error = path + ": " + reason;
    return false;
  }
  static_assert(kMaxImageFileBytes <= INT_MAX, "stb_image takes the length as an int");
  // stb's failure reason is thread-local, so concurrent decodes do not mix messages up.
  if (stbi_info_from_memory(bytes->data(), static_cast<int>(bytes->size()), w, h, comp) == 0) {
    *error = path + ": cannot decode image: " + stbi_failure_reason();
    return false;
  }
  // stb accepts a PNM header declaring a zero side (fuzz finding 9, docs/reliability.md).
  if (*w <= 0 || *h <= 0) {
    *error = path + ": image of " + std::to_string(*w) + "x" + std::to_string(*h) +
             " pixels has no pixels";
    return false;
  }
  return true;
}

}  // namespace

bool DecodeImageFile(const std::string& path, ImageChannels channels, at::Tensor* image,
                     std::string* error) {
  std::vector<unsigned char> bytes;
  int w = 0, h = 0, comp = 0;
  // The header only: the declared size is checked before anything is decoded or allocated.
  if (!ReadImageHeader(path, &bytes, &w, &h, &comp, error)) return false;
  if (static_cast<int64_t>(w) * h > kMaxImagePixels) {
    *error = path + ": image of " + std::to_string(w) + "x" + std::to_string(h) +
             " pixels, more than the " + std::to_string(kMaxImagePixels >> 20) +
             " Mpixel an image may have";
    return false;
  }
  const int want = (channels == ImageChannels::kAsStored && comp <= 2) ? 1 : 3;
  std::unique_ptr<stbi_uc, StbFree> pixels(stbi_load_from_memory(
      bytes.data(), static_cast<int>(bytes.size()), &w, &h, &comp, want));
  if (pixels == nullptr) {
    *error = path + ": cannot decode image: " + stbi_failure_reason();
    return false;
  }
  *image = at::empty({h, w, want}, at::kByte);  // [H, W, C]
  std::memcpy(image->data_ptr<uint8_t>(), pixels.get(), static_cast<size_t>(h) * w * want);
  return true;
}

bool ReadImageSize(const std::string& path, int64_t* width, int64_t* height, std::string* error) {
  // The whole file, not a stream: stb_image's header parser is what stb_precheck guards, and the
  // check needs every Huffman table before the frame header.
  std::vector<unsigned char> bytes;
  int w = 0, h = 0, comp = 0;
  if (!ReadImageHeader(path, &bytes, &w, &h, &comp, error)) return false;
  *width = w;
  *height = h;
  return true;
}

}  // namespace psaq::model
