// Small file-system helpers for the job's outputs and checkpoints.
#pragma once

#include <string>

#include "dist/utc_time.h"

namespace psaq::gen {

// Writes `text` to "<path>.tmp.<pid>", fsyncs it, renames it over `path` and fsyncs the
// directory, so `path` is either the old or the complete new file, even after a crash; the
// temporary is removed on failure. Throws std::runtime_error("<path>: <reason>").
void WriteFileAtomic(const std::string& path, const std::string& text);

// The whole file. Throws std::runtime_error("<path>: <reason>") when it cannot be read.
std::string ReadTextFile(const std::string& path);

// Creates `dir` and its parents when missing. Throws std::runtime_error naming it on failure
// (or when it exists and is not a directory).
void MakeDirs(const std::string& dir);

// "2026-11-28T21:42:06Z" (dist/utc_time.h), for the "created" fields of what gen/ writes.
using dist::UtcNow;

}  // namespace psaq::gen
