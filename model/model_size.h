// The size of the model a config describes, computed from the config alone (no module is built),
// so a weights file's metadata can be checked against the tensors the file holds before anything
// is allocated: a 2.6 MB file whose config says embed_dim 30000 would otherwise ask for 10.8 GB,
// one that says depth 10^6 would build blocks for minutes.
#pragma once

#include <cstdint>
#include <string>

#include "model/config.h"

namespace psaq::model {

struct ModelSize {
  // Each count saturates at UINT64_MAX instead of overflowing (a config may say anything).
  uint64_t tensors = 0;     // parameters and persistent buffers in the state dict
  uint64_t parameters = 0;  // their elements
  uint64_t derived = 0;     // elements of derived constants kept out of the state dict (Swin's
                            // relative position index and shifted-window masks, rebuilt per block)
};

// The state dict CreateModel(config) would have: exactly its tensor count and element count (the
// test builds models and compares), and the derived constants it would compute.
// REQUIRES: the per-field checks of ValidateConfig hold (positive sizes, divisibility); the size
// of an invalid config is meaningless but never undefined behaviour.
ModelSize ModelSizeOf(const ModelConfig& config);

// How much larger than a file's tensors the model its config describes may be before the config
// is refused unbuilt: twice the file's elements plus 2^20, twice its tensors plus 16. The bound
// keeps the allocation within a small multiple of what the file actually holds (an int8 export's
// codes become float32, a config may add a few tensors), while an honest mismatch of a few
// tensors still reaches the strict load (model/state_dict.h), which names every missing, extra
// or mis-shaped key.
inline constexpr uint64_t kConfigSlackFactor = 2;
inline constexpr uint64_t kConfigSlackElements = uint64_t{1} << 20;
inline constexpr uint64_t kConfigSlackTensors = 16;

// Refuses, before any module is built, a config that describes a far larger model than a file
// holds (beyond the slack above): throws std::runtime_error("<source>: the config describes a
// model of <P> parameters in <T> tensors, far more than the file holds (<p> elements in <t>
// tensors)").
void CheckConfigFitsFile(const ModelConfig& config, uint64_t file_tensors, uint64_t file_elements,
                         const std::string& source);

}  // namespace psaq::model
