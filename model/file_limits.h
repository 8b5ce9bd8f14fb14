// Limits psaq enforces on the model files it reads: safetensors weights files, quantized exports
// and their manifests (quant/export.h). Each limit is checked before the work or the allocation it
// bounds, and a file past one is refused with one line naming the file, the quantity and the limit.
// The README's "Limits" paragraph lists the same numbers; change both together.
//
//   limit                  value               what it bounds
//   kMaxHeaderBytes        100,000,000 bytes   a safetensors JSON header (the reference
//                                              implementation's limit) and a manifest
//   kMaxJsonDepth          64 levels           nesting of any JSON psaq reads from a model file:
//                                              the header, the JSON metadata values ("config",
//                                              "preprocess", "quant_points"), the manifest. A
//                                              valid file needs 4; the check is a byte scan done
//                                              before parsing, so no recursion ever sees more
//   kMaxTensors            100,000             tensor entries in one safetensors header (the
//                                              largest ViT/Swin exports hold about 1,500)
//   kMaxDataBytes          32 GiB              the data buffer of one safetensors file (the sum
//                                              of its tensors' bytes), checked before any of it
//                                              is allocated
//   kMaxModelElements      2^33 (32 GiB f32)   parameters plus derived constants of the model a
//                                              config describes (model::ValidateConfig)
//   kMaxDerivedElements    2^28 (1 GiB f32)    Swin's derived constants (relative position index
//                                              and shifted-window masks, which grow as window^4
//                                              and are not stored in the file)
//   preprocess mean/std    |mean| <= 1e3,      a weights file's "preprocess": finite, and no
//                          1e-3 <= std <= 1e3  normalisation that blows pixels up or flattens them
//
// Besides, model/model_size.h: a config is checked against the tensors a file actually holds
// before the model is built (CheckConfigFitsFile: at most twice the file's elements, plus 2^20),
// and model/state_dict.h: weights must be finite and floating-point where the model's are.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace psaq::model {

inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;
inline constexpr int kMaxJsonDepth = 64;
inline constexpr int64_t kMaxTensors = 100'000;
inline constexpr uint64_t kMaxDataBytes = uint64_t{32} << 30;
inline constexpr uint64_t kMaxModelElements = uint64_t{1} << 33;
inline constexpr uint64_t kMaxDerivedElements = uint64_t{1} << 28;
inline constexpr double kMaxPreprocessMean = 1e3;
inline constexpr double kMinPreprocessStd = 1e-3;
inline constexpr double kMaxPreprocessStd = 1e3;

// What a non-recursive scan of a JSON text found (strings and escapes are skipped, so brackets
// inside strings do not count; invalid JSON is left to the parser).
struct JsonShape {
  int max_depth = 0;        // deepest nesting of objects/arrays (a bare "{}" is 1)
  int64_t top_members = 0;  // members of the top-level object (its ':' separators)
  bool too_deep = false;    // nesting passed `depth_limit`; the scan stopped there
};
JsonShape ScanJson(std::string_view text, int depth_limit = kMaxJsonDepth);

// Throws std::runtime_error("<what>: JSON nests deeper than 64 levels (psaq's limit)") when
// `text` nests past kMaxJsonDepth. Call before parsing any JSON read from a file: nlohmann's
// dump() (used in error messages) recurses once per level and overflows the stack at ~75,000.
void CheckJsonDepth(std::string_view text, const std::string& what);

// Opens `path` for reading and returns the descriptor (O_CLOEXEC; the caller closes it). Refuses,
// without blocking, anything but a regular file (a FIFO would block the open or the read forever,
// a device such as /dev/zero never ends, a directory cannot be read). Throws std::runtime_error
// "<path>: cannot open for reading: <errno text>" or "<path>: not a regular file (a FIFO)".
int OpenRegularFile(const std::string& path);

// The whole of regular file `path`, refused first when larger than `max_bytes`. Throws
// std::runtime_error("<path>: <reason>") (OpenRegularFile's errors, "<n> bytes exceeds the
// <max_bytes>-byte limit", or a read error).
std::string ReadRegularFile(const std::string& path, uint64_t max_bytes);

}  // namespace psaq::model
