// Safetensors reading and writing (https://github.com/huggingface/safetensors, format v0):
//   8 bytes little-endian u64 N | N bytes JSON header | data buffer.
// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end)} relative to
// the data buffer, plus an optional "__metadata__" map of string to string.
//
// Supported dtypes: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL (the LibTorch dtypes of the same width).
// Reading validates the whole file before returning anything: a truncated file, a header length
// past the end, invalid JSON, a non-object header, offsets out of range, overlapping or leaving
// holes, a byte size that does not match dtype x shape, an unknown dtype, a duplicate name, or a
// non-string metadata value each throw SafetensorsError("<path>: <reason>"). Never a partial load.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace psaq::model {

class SafetensorsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SafetensorsFile {
  // Tensors in file order (ascending data offset), each a contiguous CPU tensor owning its memory.
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  std::map<std::string, std::string> metadata;

  // The tensor called `name`; throws SafetensorsError naming `source` when absent.
  const at::Tensor& Get(const std::string& name) const;
  bool Has(const std::string& name) const;
  // Name -> tensor map (copies the handles, not the data).
  std::map<std::string, at::Tensor> ToMap() const;
  std::string source;  // the path it was read from
};

// Reads and validates `path`. Throws SafetensorsError (see above) or on I/O failure.
SafetensorsFile ReadSafetensors(const std::string& path);

// Parses only the header of `path` (no tensor data is read): metadata and names/dtypes/shapes.
// Same validation of the header as ReadSafetensors.
SafetensorsFile ReadSafetensorsHeader(const std::string& path);

// Writes `tensors` (any device; copied to CPU, made contiguous; names unique, not "__metadata__")
// in the given order with `metadata`. Atomic: writes "<path>.tmp.<pid>" then renames, so a reader
// never sees a partial file. Throws SafetensorsError with the path on a bad argument or I/O error.
void WriteSafetensors(const std::string& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace psaq::model
