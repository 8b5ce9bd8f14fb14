// Small output files written by rank 0 (JSON results, reports): checked early, written atomically.
#pragma once

#include <string>

namespace psaq::launch {

// Fails early, before hours of work, when `path` cannot be written: creates and removes
// "<path>.tmp.<pid>" in its directory. Throws std::runtime_error("<flag>=<path>: <reason>").
void CheckWritable(const std::string& flag, const std::string& path);

// Writes `text` to "<path>.tmp.<pid>", flushes it to disk, then renames it over `path`, so a
// reader sees the old file or the new one, never a partial one. Throws std::runtime_error
// naming the path and the reason; the temporary file is removed on failure.
void WriteFileAtomically(const std::string& path, const std::string& text);

}  // namespace psaq::launch
