// Reading safetensors files; the format and the checks are in model/safetensors.h.
#include "model/safetensors.h"

#include <ATen/ATen.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "model/file_limits.h"
#include "model/safetensors_format.h"

namespace psaq::model {
namespace {

using safetensors_internal::DtypeByName;
using safetensors_internal::DtypeInfo;
using safetensors_internal::Fail;

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << '[';
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << ']';
  return s.str();
}

// One validated header entry.
struct Entry {
  std::string name;
  const DtypeInfo* dtype = nullptr;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

struct Header {
  std::vector<Entry> entries;  // sorted by data offset
  std::map<std::string, std::string> metadata;
};

// Closes a FILE* on scope exit.
struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// Regular files only (model/file_limits.h): a FIFO would block here forever, /dev/zero never ends.
FilePtr OpenForReading(const std::string& path) {
  int fd = -1;
  try {
    fd = OpenRegularFile(path);
  } catch (const std::runtime_error& e) {
    throw SafetensorsError(e.what());
  }
  FilePtr f(::fdopen(fd, "rb"));
  if (!f) {
    const int error = errno;
    ::close(fd);
    Fail(path, std::string("cannot open for reading: ") + std::strerror(error));
  }
  return f;
}

uint64_t FileSize(std::FILE* f, const std::string& path) {
  if (fseeko(f, 0, SEEK_END) != 0) Fail(path, std::string("cannot seek: ") + std::strerror(errno));
  const off_t size = ftello(f);
  if (size < 0) Fail(path, std::string("cannot tell size: ") + std::strerror(errno));
  if (fseeko(f, 0, SEEK_SET) != 0) Fail(path, std::string("cannot seek: ") + std::strerror(errno));
  return static_cast<uint64_t>(size);
}

void ReadExactly(std::FILE* f, void* dst, size_t bytes, const std::string& path,
                 const std::string& what) {
  if (bytes == 0) return;
  if (std::fread(dst, 1, bytes, f) != bytes) {
    Fail(path, "short read of " + what +
                   (std::ferror(f) ? std::string(": ") + std::strerror(errno)
                                   : std::string(" (file truncated?)")));
  }
}

uint64_t ReadU64(const nlohmann::json& v, const std::string& path, const std::string& what) {
  if (!v.is_number_integer()) Fail(path, what + " is not an integer: " + v.dump());
  if (!v.is_number_unsigned() && v.get<int64_t>() < 0) {
    Fail(path, what + " is negative: " + v.dump());
  }
  return v.get<uint64_t>();
}

Entry ParseEntry(const std::string& name, const nlohmann::json& v, const std::string& path) {
  const std::string where = "tensor '" + name + "'";
  if (!v.is_object()) Fail(path, where + ": entry is not an object");
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!v.contains(field)) Fail(path, where + ": missing field \"" + field + "\"");
  }
  Entry e;
  e.name = name;
  const auto& dtype = v["dtype"];
  if (!dtype.is_string()) Fail(path, where + ": \"dtype\" is not a string");
  e.dtype = DtypeByName(dtype.get<std::string>());
  if (e.dtype == nullptr) Fail(path, where + ": unknown dtype '" + dtype.get<std::string>() + "'");

  const auto& shape = v["shape"];
  if (!shape.is_array()) Fail(path, where + ": \"shape\" is not an array");
  uint64_t numel = 1;
  bool overflow = false;
  for (const auto& d : shape) {
    if (!d.is_number_integer()) {
      Fail(path, where + ": shape dimension is not an integer: " + d.dump());
    }
    if (!d.is_number_unsigned() && d.get<int64_t>() < 0) {
      Fail(path, where + ": negative shape dimension " + d.dump());
    }
    const uint64_t dim = d.get<uint64_t>();
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      Fail(path, where + ": shape dimension too large: " + d.dump());
    }
    e.shape.push_back(static_cast<int64_t>(dim));
    overflow = overflow || __builtin_mul_overflow(numel, dim, &numel);
  }
  uint64_t bytes = 0;
  overflow = overflow || __builtin_mul_overflow(numel, e.dtype->itemsize, &bytes);

  const auto& offsets = v["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2) {
    Fail(path, where + ": \"data_offsets\" is not [begin, end]");
  }
  e.begin = ReadU64(offsets[0], path, where + ": data_offsets[0]");
  e.end = ReadU64(offsets[1], path, where + ": data_offsets[1]");
  if (e.begin > e.end) {
    Fail(path, where + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                   "] has begin > end");
  }
  if (overflow || e.end - e.begin != bytes) {
    Fail(path, where + ": byte size " + std::to_string(e.end - e.begin) + " does not match " +
                   e.dtype->name + " " + ShapeString(e.shape) +
                   (overflow ? " (size overflows)" : " (" + std::to_string(bytes) + " bytes)"));
  }
  return e;
}

std::map<std::string, std::string> ParseMetadata(const nlohmann::json& v, const std::string& path) {
  std::map<std::string, std::string> metadata;
  if (v.is_null()) return metadata;  // the reference accepts null as "no metadata"
  if (!v.is_object()) Fail(path, "__metadata__ is not an object of strings");
  for (const auto& [key, value] : v.items()) {
    if (!value.is_string()) {
      Fail(path, "__metadata__ value of '" + key + "' is not a string: " + value.dump());
    }
    metadata.emplace(key, value.get<std::string>());
  }
  return metadata;
}

struct DuplicateKey {
  std::string key;
  size_t depth = 0;  // 1 = a key of the top-level object (a tensor name)
};

// SAX handler that remembers the first key repeated within one object: O(n log n) in the keys.
class DuplicateKeyFinder : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::optional<DuplicateKey> duplicate;

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    open_.emplace_back();
    return true;
  }
  bool key(string_t& key) override {
    if (!open_.back().insert(key).second) {
      duplicate = DuplicateKey{key, open_.size()};
      return false;  // stop at the first repeat
    }
    return true;
  }
  bool end_object() override {
    open_.pop_back();
    return true;
  }
  // Arrays hold no keys; an empty set keeps the stack in step with the nesting.
  bool start_array(std::size_t) override {
    open_.emplace_back();
    return true;
  }
  bool end_array() override {
    open_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  std::vector<std::set<std::string>> open_;  // keys of each open container
};

// The first repeated key of `text` (already parsed once, so valid JSON), if any.
std::optional<DuplicateKey> FindDuplicateKey(const std::string& text) {
  DuplicateKeyFinder finder;
  nlohmann::json::sax_parse(text, &finder);
  return finder.duplicate;
}

// Parses and validates the JSON header (file offsets [8, 8 + header_len)). The data buffer spans
// [8 + header_len, file_size) and must be covered exactly by the tensors' byte ranges.
Header ParseHeader(const std::string& text, uint64_t data_size, const std::string& path) {
  // Bounded before any parsing (model/file_limits.h): the nesting depth (nlohmann's dump(), used
  // in error messages, recurses once per level) and the number of entries.
  const JsonShape shape = ScanJson(text);
  if (shape.too_deep) {
    Fail(path, "header JSON nests deeper than " + std::to_string(kMaxJsonDepth) +
                   " levels (psaq's limit)");
  }
  if (shape.top_members > kMaxTensors + 1) {  // + 1: "__metadata__"
    Fail(path, "header lists " + std::to_string(shape.top_members) + " entries, more than the " +
                   std::to_string(kMaxTensors) + " tensors psaq reads from one file");
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    Fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) Fail(path, "header is not a JSON object");
  // nlohmann keeps one value of a repeated key without telling, so a second, SAX pass sees every
  // key. (Its callback parser would too, but it rescans the parent object after every entry:
  // quadratic, over a minute for 200,000 entries.)
  if (const std::optional<DuplicateKey> duplicate = FindDuplicateKey(text)) {
    Fail(path, duplicate->depth == 1
                   ? "duplicate tensor name '" + duplicate->key + "'"
                   : "duplicate key '" + duplicate->key + "' inside a header entry");
  }

  Header result;
  result.entries.reserve(header.size());
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      result.metadata = ParseMetadata(value, path);
    } else {
      result.entries.push_back(ParseEntry(name, value, path));
    }
  }
  if (static_cast<int64_t>(result.entries.size()) > kMaxTensors) {
    Fail(path, "header lists " + std::to_string(result.entries.size()) +
                   " tensors, more than the " + std::to_string(kMaxTensors) +
                   " tensors psaq reads from one file");
  }
  std::sort(result.entries.begin(), result.entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // Tensors must tile the data buffer: no overlap, no hole, nothing after the last one (as the
  // reference implementation requires).
  uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : result.entries) {
    if (e.end > data_size) {
      Fail(path, "tensor '" + e.name + "': data_offsets end " + std::to_string(e.end) +
                     " is past the data buffer (" + std::to_string(data_size) + " bytes)");
    }
    if (e.begin < covered) {
      Fail(path,
           "tensors '" + previous->name + "' and '" + e.name + "' overlap in the data buffer");
    }
    if (e.begin > covered) {
      Fail(path, "hole in the data buffer: bytes [" + std::to_string(covered) + ", " +
                     std::to_string(e.begin) + ") before tensor '" + e.name +
                     "' belong to no tensor");
    }
    covered = e.end;
    previous = &e;
  }
  if (covered != data_size) {
    Fail(path, std::to_string(data_size - covered) + " trailing bytes after the last tensor");
  }
  return result;
}

// Reads and validates the length prefix and the header; leaves `f` at the data buffer.
Header ReadHeader(std::FILE* f, const std::string& path) {
  const uint64_t file_size = FileSize(f, path);
  if (file_size < 8) {
    Fail(path,
         "file too short (" + std::to_string(file_size) + " bytes) for the 8-byte header length");
  }
  uint64_t header_len = 0;
  ReadExactly(f, &header_len, 8, path, "header length");
  if (header_len > file_size - 8) {
    Fail(path, "header length " + std::to_string(header_len) + " is past the end of the file (" +
                   std::to_string(file_size) + " bytes)");
  }
  if (header_len > kMaxHeaderBytes) {
    Fail(path, "header length " + std::to_string(header_len) + " exceeds the 100 MB limit");
  }
  const uint64_t data_size = file_size - 8 - header_len;
  if (data_size > kMaxDataBytes) {
    Fail(path, "tensor data of " + std::to_string(data_size) + " bytes exceeds the " +
                   std::to_string(kMaxDataBytes >> 30) + " GiB limit");
  }
  std::string text(header_len, '\0');
  ReadExactly(f, text.data(), header_len, path, "header");
  return ParseHeader(text, data_size, path);
}

}  // namespace

const at::Tensor& SafetensorsFile::Get(const std::string& name) const {
  for (const auto& [n, t] : tensors) {
    if (n == name) return t;
  }
  throw SafetensorsError(source + ": no tensor named '" + name + "'");
}

bool SafetensorsFile::Has(const std::string& name) const {
  return std::any_of(tensors.begin(), tensors.end(),
                     [&](const auto& p) { return p.first == name; });
}

std::map<std::string, at::Tensor> SafetensorsFile::ToMap() const {
  return std::map<std::string, at::Tensor>(tensors.begin(), tensors.end());
}

SafetensorsFile ReadSafetensors(const std::string& path) {
  FilePtr f = OpenForReading(path);
  Header header = ReadHeader(f.get(), path);
  SafetensorsFile file;
  file.source = path;
  file.metadata = std::move(header.metadata);
  // The entries tile the buffer in order, so one sequential pass reads every byte once, straight
  // into each tensor's own storage.
  for (const Entry& e : header.entries) {
    at::Tensor t;
    try {
      t = at::empty(e.shape, at::TensorOptions().dtype(e.dtype->type));
    } catch (const std::exception&) {  // c10::Error or std::bad_alloc: say which file and tensor
      Fail(path, "cannot allocate " + std::to_string(e.end - e.begin) + " bytes for tensor '" +
                     e.name + "' (out of memory?)");
    }
    ReadExactly(f.get(), t.data_ptr(), e.end - e.begin, path, "tensor '" + e.name + "'");
    if (e.dtype->type == at::kBool && t.numel() > 0 &&
        t.view(at::kByte).max().item<uint8_t>() > 1) {
      Fail(path, "tensor '" + e.name + "': BOOL data holds a byte other than 0 or 1");
    }
    file.tensors.emplace_back(e.name, std::move(t));
  }
  return file;
}

SafetensorsFile ReadSafetensorsHeader(const std::string& path) {
  FilePtr f = OpenForReading(path);
  Header header = ReadHeader(f.get(), path);
  SafetensorsFile file;
  file.source = path;
  file.metadata = std::move(header.metadata);
  for (const Entry& e : header.entries) {
    file.tensors.emplace_back(
        e.name, at::empty(e.shape, at::TensorOptions().dtype(e.dtype->type).device(at::kMeta)));
  }
  return file;
}

}  // namespace psaq::model
