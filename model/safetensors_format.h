// Internal to model/safetensors*.cc: the dtype table and error helper shared by the reader and
// the writer. Not part of psaq's public API.
#pragma once

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <string>

#include "model/safetensors_error.h"

// The on-disk format is little-endian; tensors are read and written as raw memory.
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "psaq's safetensors I/O assumes a little-endian host"
#endif

namespace psaq::model::safetensors_internal {

struct DtypeInfo {
  const char* name;  // the safetensors spelling, e.g. "BF16"
  c10::ScalarType type;
  uint64_t itemsize;  // bytes per element
};

inline constexpr DtypeInfo kDtypes[] = {
    {"F64", c10::kDouble, 8},    {"F32", c10::kFloat, 4}, {"F16", c10::kHalf, 2},
    {"BF16", c10::kBFloat16, 2}, {"I64", c10::kLong, 8},  {"I32", c10::kInt, 4},
    {"I16", c10::kShort, 2},     {"I8", c10::kChar, 1},   {"U8", c10::kByte, 1},
    {"BOOL", c10::kBool, 1},
};

// nullptr when the name / type is not supported.
inline const DtypeInfo* DtypeByName(const std::string& name) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

inline const DtypeInfo* DtypeByType(c10::ScalarType type) {
  for (const auto& d : kDtypes) {
    if (type == d.type) return &d;
  }
  return nullptr;
}

// Throws SafetensorsError("<path>: <reason>").
[[noreturn]] inline void Fail(const std::string& path, const std::string& reason) {
  throw SafetensorsError(path + ": " + reason);
}

}  // namespace psaq::model::safetensors_internal
