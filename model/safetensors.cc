// Reading safetensors files; the format and the checks are in model/safetensors.h.
#include "model/safetensors.h"

#include <ATen/ATen.h>

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

#include "model/safetensors_format.h"

namespace psaq::model {
namespace {

using safetensors_internal::DtypeByName;
using safetensors_internal::DtypeInfo;
using safetensors_internal::Fail;

// The reference implementation refuses headers above 100 MB; so do we (a corrupt length field
// would otherwise make us allocate the whole file for a header).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

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

FilePtr OpenForReading(const std::string& path) {
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) Fail(path, std::string("cannot open for reading: ") + std::strerror(errno));
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

// Parses and validates the JSON header (file offsets [8, 8 + header_len)). The data buffer spans
// [8 + header_len, file_size) and must be covered exactly by the tensors' byte ranges.
Header ParseHeader(const std::string& text, uint64_t data_size, const std::string& path) {
  // nlohmann keeps one value of a repeated key without telling; a parser callback sees every key,
  // so we track the keys of each open object and remember the first repeat.
  std::vector<std::set<std::string>> open_objects;
  std::optional<std::string> duplicate;
  int duplicate_depth = 0;
  auto callback = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if (event == Event::object_start) {
      open_objects.emplace_back();
    } else if (event == Event::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == Event::key && !open_objects.empty() && !duplicate) {
      const std::string key = parsed.get<std::string>();
      if (!open_objects.back().insert(key).second) {
        duplicate = key;
        duplicate_depth = depth;
      }
    }
    return true;
  };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text, callback);
  } catch (const nlohmann::json::exception& e) {
    Fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) Fail(path, "header is not a JSON object");
  if (duplicate) {
    Fail(path, duplicate_depth == 1 ? "duplicate tensor name '" + *duplicate + "'"
                                    : "duplicate key '" + *duplicate + "' inside a header entry");
  }

  Header result;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      result.metadata = ParseMetadata(value, path);
    } else {
      result.entries.push_back(ParseEntry(name, value, path));
    }
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
  std::string text(header_len, '\0');
  ReadExactly(f, text.data(), header_len, path, "header");
  return ParseHeader(text, file_size - 8 - header_len, path);
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
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(e.dtype->type));
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
