// Safetensors reading and writing (https://github.com/huggingface/safetensors, format v0):
//   8 bytes little-endian u64 N | N bytes JSON header | data buffer.
// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end)} relative to
// the data buffer, plus an optional "__metadata__" map of string to string.
//
// Supported dtypes: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL <-> at::kDouble kFloat kHalf kBFloat16
// kLong kInt kShort kChar kByte kBool. Little-endian hosts only (checked at compile time).
//
// Reading validates the whole file before returning anything (never a partial load). Each of these
// throws SafetensorsError("<path>: <reason>"), naming the tensor where there is one:
//   - a path that is not a regular file (a FIFO, a device, a directory: refused without blocking);
//   - a file shorter than 8 bytes, a header length past the end of the file or above
//     kMaxHeaderBytes = 100 MB (the reference implementation's limit), a data buffer above
//     kMaxDataBytes = 32 GiB (model/file_limits.h has these limits);
//   - header JSON nesting deeper than kMaxJsonDepth = 64 levels or listing more than kMaxTensors =
//     100,000 tensors (both found by a byte scan before the JSON is parsed);
//   - invalid JSON, a header that is not an object, a repeated key anywhere in it (a duplicate
//     tensor name in particular: JSON libraries silently keep one);
//   - an entry that is not an object, lacks "dtype"/"shape"/"data_offsets" or has them of the wrong
//     type, a negative dimension, an unknown dtype, data_offsets that are not two non-negative
//     integers [begin, end] with begin <= end, end past the data buffer, or end - begin !=
//     numel * itemsize;
//   - byte ranges that overlap, leave a hole, or leave trailing bytes after the last tensor: as in
//     the reference implementation, the tensors must tile the data buffer exactly;
//   - "__metadata__" that is neither an object of strings nor null (null means no metadata);
//   - BOOL data holding a byte other than 0 or 1 (ReadSafetensors only: the header reader does not
//     see data);
//   - a tensor whose memory cannot be allocated (ReadSafetensors only).
// Time is O(n log n) in the number of tensors. The values are not checked (NaN is a valid F32):
// model/state_dict.h refuses non-finite weights when they are loaded into a model.
// Extra fields inside an entry are ignored, as the reference implementation does.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "model/safetensors_error.h"  // SafetensorsError

namespace psaq::model {

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

// Parses only the header of `path` (no tensor data is read): metadata, and each tensor as a tensor
// on the meta device (at::kMeta: right name, dtype and shape, no storage), in file order. Same
// validation as ReadSafetensors, the size of the data buffer included.
SafetensorsFile ReadSafetensorsHeader(const std::string& path);

// Writes `tensors` (any device; copied to CPU one at a time, made contiguous; names unique, valid
// UTF-8, not "__metadata__"; dtypes from the list above) back to back in the given order, with
// `metadata` ("__metadata__" omitted when empty). The JSON header is padded with spaces so that the
// data buffer starts at an 8-byte aligned file offset, as the reference writer does. 0-dim and
// 0-element tensors are fine. Atomic: writes and fsyncs "<path>.tmp.<pid>", then renames it over
// `path`, so a reader never sees a partial file; the temporary is removed on failure. Throws
// SafetensorsError("<path>: <reason>") on a bad argument or any I/O error.
void WriteSafetensors(const std::string& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace psaq::model
