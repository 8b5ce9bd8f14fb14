#include "model/data/idx_reader.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "model/data/dataset.h"

namespace psaq::model {
namespace {

constexpr uint8_t kTypeUnsignedByte = 0x08;
constexpr int64_t kMaxElements = int64_t{1} << 36;
constexpr size_t kChunk = size_t{1} << 20;  // bytes per gzread (it takes an unsigned count)
// Deflate's largest expansion: a 258-byte match coded in 2 bits (RFC 1951; zlib's FAQ).
constexpr int64_t kMaxDeflateRatio = 1032;

[[noreturn]] void Fail(const std::string& path, const std::string& reason) {
  throw DatasetError(path + ": " + reason);
}

// gzFile with RAII over a regular file (opened with O_NONBLOCK: a FIFO is refused, not waited on).
// gzdopen reads plain files transparently.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path) {
    const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) Fail(path, std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      close(fd);
      Fail(path, "not a regular file");
    }
    file_size_ = static_cast<int64_t>(st.st_size);
    file_ = gzdopen(fd, "rb");
    if (file_ == nullptr) {
      close(fd);
      Fail(path, "cannot open");
    }
    gzbuffer(file_, 1 << 17);
  }
  ~GzReader() { gzclose(file_); }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // The file's size on disk (compressed when it is gzip).
  int64_t file_size() const { return file_size_; }
  // Whether the file is gzip (zlib knows once the first bytes are read).
  bool compressed() const { return gzdirect(file_) == 0; }

  // Reads up to `n` bytes into `dst`; returns the count (< n only at the end of the data).
  size_t Read(uint8_t* dst, size_t n) {
    size_t total = 0;
    while (total < n) {
      const auto want = static_cast<unsigned>(std::min(n - total, kChunk));
      const int got = gzread(file_, dst + total, want);
      if (got < 0) {
        int errnum = 0;
        std::string msg = gzerror(file_, &errnum);
        // zlib names the file "<fd:N>" (gzdopen) before its reason.
        const size_t colon = msg.find(": ");
        if (msg.rfind("<fd:", 0) == 0 && colon != std::string::npos) msg.erase(0, colon + 2);
        Fail(path_, "read failed: " + msg);
      }
      if (got == 0) break;
      total += static_cast<size_t>(got);
    }
    return total;
  }

 private:
  std::string path_;
  int64_t file_size_ = 0;
  gzFile file_ = nullptr;
};

}  // namespace

at::Tensor ReadIdxUint8(const std::string& path, int expected_dims) {
  TORCH_CHECK(expected_dims >= 1 && expected_dims <= 255,
              "expected_dims out of range: ", expected_dims);
  GzReader in(path);
  uint8_t magic[4];
  if (in.Read(magic, 4) != 4) Fail(path, "truncated: shorter than the 4-byte IDX magic");
  if (magic[0] != 0 || magic[1] != 0) Fail(path, "bad IDX magic: leading bytes are not zero");
  if (magic[2] != kTypeUnsignedByte) {
    char type[8];
    std::snprintf(type, sizeof(type), "0x%02x", static_cast<unsigned>(magic[2]));
    Fail(path, std::string("unsupported IDX element type ") + type + " (only 0x08, unsigned byte)");
  }
  if (magic[3] != expected_dims) {
    Fail(path, "bad IDX magic: " + std::to_string(magic[3]) + " dimensions, expected " +
                   std::to_string(expected_dims));
  }

  std::vector<int64_t> dims(expected_dims);
  int64_t count = 1;
  for (int d = 0; d < expected_dims; ++d) {
    uint8_t be[4];
    if (in.Read(be, 4) != 4) Fail(path, "truncated inside the dimension header");
    dims[d] = (int64_t{be[0]} << 24) | (int64_t{be[1]} << 16) | (int64_t{be[2]} << 8) | be[3];
    if (dims[d] == 0) Fail(path, "dimension " + std::to_string(d) + " is 0");
    if (dims[d] > kMaxElements / count) {  // checked before multiplying: no overflow
      Fail(path, "implausible dimensions (more than 2^36 elements)");
    }
    count *= dims[d];
  }

  // The declared count against the file's size, before any allocation: a plain file holds it
  // exactly; a gzip file cannot expand by more than deflate's maximum ratio.
  const int64_t header_bytes = 4 + 4 * int64_t{expected_dims};
  if (!in.compressed()) {
    const int64_t data_bytes = in.file_size() - header_bytes;
    if (data_bytes < count) {
      Fail(path, "truncated: the header promises " + std::to_string(count) +
                     " data bytes, the file holds " + std::to_string(data_bytes));
    }
    if (data_bytes > count) Fail(path, "trailing data after " + std::to_string(count) + " bytes");
  } else if (count > kMaxDeflateRatio * in.file_size()) {
    Fail(path, "truncated: the header promises " + std::to_string(count) +
                   " data bytes, more than a gzip file of " + std::to_string(in.file_size()) +
                   " bytes can hold (deflate expands at most " + std::to_string(kMaxDeflateRatio) +
                   ":1)");
  }

  // Grow with the data actually present; read one byte past the end to detect trailing data.
  auto data = std::make_unique<std::vector<uint8_t>>();
  const auto expected = static_cast<size_t>(count);
  size_t have = 0;
  while (have <= expected) {
    const size_t step = std::min(expected + 1 - have, std::max(kChunk, have));
    data->resize(have + step);
    const size_t got = in.Read(data->data() + have, step);
    have += got;
    if (got < step) break;
  }
  if (have < expected) {
    Fail(path, "truncated: the header promises " + std::to_string(expected) +
                   " data bytes, the file holds " + std::to_string(have));
  }
  if (have > expected) Fail(path, "trailing data after " + std::to_string(expected) + " bytes");
  data->resize(expected);

  // Hand the buffer to the tensor without a copy.
  std::vector<uint8_t>* owner = data.release();
  return at::from_blob(
      owner->data(), dims, [owner](void*) { delete owner; }, at::TensorOptions().dtype(at::kByte));
}

}  // namespace psaq::model
