// Writing files so that a reader (or a restarted job) sees the old file or the complete new one,
// never a torn one, and the few other file-system helpers psaq's writers share. Every file psaq
// writes (safetensors weights and exports, manifests, sample shards, checkpoints, report.json,
// --json_out) goes through AtomicFile; there is no second writer.
//
//   AtomicFile out("run/model.safetensors");   // creates run/model.safetensors.tmp.<pid>
//   out.Append(header.data(), header.size());  // any number of appends
//   out.Commit();                              // fsync, rename over the path, fsync the directory
//
// Errors are std::runtime_error("<path>: <reason>") naming the destination, never the
// temporary, first; the temporary is removed on every failure and when the writer is destroyed
// without Commit() (e.g. an exception while producing the data).
#pragma once

#include <cstddef>
#include <string>

namespace psaq::base {

class AtomicFile {
 public:
  // Creates "<path>.tmp.<pid>" beside `path`. Throws "<path>: cannot create '<tmp>': <errno>".
  explicit AtomicFile(std::string path);
  // Removes the temporary file unless Commit() succeeded.
  ~AtomicFile();

  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Appends `bytes` bytes (retrying short writes and EINTR). Throws "<path>: write failed: ...".
  void Append(const void* data, size_t bytes);
  // Flushes the data to disk, renames the temporary over the path and fsyncs the directory.
  // Throws "<path>: write failed: ..." or "<path>: cannot rename ...". REQUIRES: called once.
  void Commit();

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

// `text` as the whole content of `path`, through AtomicFile.
void WriteFileAtomic(const std::string& path, const std::string& text);

// Fails early, before hours of work, when `path` cannot be written: creates and removes
// "<path>.tmp.<pid>" in its directory. Throws std::runtime_error("<flag>=<path>: <reason>").
void CheckWritable(const std::string& flag, const std::string& path);

// The whole file. Throws std::runtime_error("<path>: <reason>") when it cannot be read.
std::string ReadTextFile(const std::string& path);

// Creates `dir` and its parents when missing. Throws std::runtime_error naming it on failure
// (or when it exists and is not a directory).
void MakeDirs(const std::string& dir);

}  // namespace psaq::base
