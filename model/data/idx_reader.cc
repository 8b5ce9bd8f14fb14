#include "model/data/idx_reader.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <vector>

#include "model/data/dataset.h"

namespace psaq::model {
namespace {

constexpr uint8_t kTypeUnsignedByte = 0x08;
constexpr int64_t kMaxElements = int64_t{1} << 36;
constexpr size_t kChunk = size_t{1} << 20;  // bytes per gzread (it takes an unsigned count)

[[noreturn]] void Fail(const std::string& path, const std::string& reason) {
  throw DatasetError(path + ": " + reason);
}

// gzFile with RAII. gzopen reads plain files transparently.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path), file_(gzopen(path.c_str(), "rb")) {
    if (file_ == nullptr) Fail(path, "cannot open");
    gzbuffer(file_, 1 << 17);
  }
  ~GzReader() { gzclose(file_); }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to `n` bytes into `dst`; returns the count (< n only at the end of the data).
  size_t Read(uint8_t* dst, size_t n) {
    size_t total = 0;
    while (total < n) {
      const auto want = static_cast<unsigned>(std::min(n - total, kChunk));
      const int got = gzread(file_, dst + total, want);
      if (got < 0) {
        int errnum = 0;
        std::string msg = gzerror(file_, &errnum);
        if (msg.rfind(path_ + ": ", 0) == 0) msg.erase(0, path_.size() + 2);  // zlib adds the path
        Fail(path_, "read failed: " + msg);
      }
      if (got == 0) break;
      total += static_cast<size_t>(got);
    }
    return total;
  }

 private:
  std::string path_;
  gzFile file_;
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
