// The exception of psaq's safetensors I/O, on its own so that the reader/writer internals
// (model/safetensors_format.h) can throw it without including the public API
// (model/safetensors.h, which re-exports it).
#pragma once

#include <stdexcept>

namespace psaq::model {

// A malformed or unreadable/unwritable safetensors file; what() is "<path>: <reason>".
class SafetensorsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace psaq::model
