// Writing safetensors files; the format and the guarantees are in model/safetensors.h.
#include <ATen/ATen.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "model/safetensors.h"
#include "model/safetensors_format.h"

namespace psaq::model {
namespace {

using safetensors_internal::DtypeByType;
using safetensors_internal::DtypeInfo;
using safetensors_internal::Fail;

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// Removes a temporary file on scope exit unless Commit() was called.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  ~TempFile() {
    if (!committed_) std::remove(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }
  void Commit() { committed_ = true; }

 private:
  std::string path_;
  bool committed_ = false;
};

void WriteExactly(std::FILE* f, const void* src, size_t bytes, const std::string& path,
                  const std::string& tmp) {
  if (bytes > 0 && std::fwrite(src, 1, bytes, f) != bytes) {
    Fail(path, "cannot write '" + tmp + "': " + std::strerror(errno));
  }
}

// The JSON header for `tensors` laid out back to back in the given order, padded with spaces so
// that the data buffer starts at a multiple of 8 bytes (as the reference implementation does).
std::string BuildHeader(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                        const std::map<std::string, std::string>& metadata,
                        const std::string& path) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") Fail(path, "'__metadata__' cannot name a tensor");
    if (!names.insert(name).second) Fail(path, "duplicate tensor name '" + name + "'");
    if (!t.defined()) Fail(path, "tensor '" + name + "' is undefined");
    const DtypeInfo* dtype = DtypeByType(t.scalar_type());
    if (dtype == nullptr) {
      Fail(path, "tensor '" + name + "' has dtype " + std::string(c10::toString(t.scalar_type())) +
                     ", which safetensors (as psaq writes it) does not support");
    }
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * dtype->itemsize;
    header[name] = {{"dtype", dtype->name},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {  // e.g. a name that is not valid UTF-8
    Fail(path, std::string("cannot encode the header: ") + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

}  // namespace

void WriteSafetensors(const std::string& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string header = BuildHeader(tensors, metadata, path);
  TempFile tmp(path + ".tmp." + std::to_string(::getpid()));
  FilePtr f(std::fopen(tmp.path().c_str(), "wb"));
  if (!f) Fail(path, "cannot create '" + tmp.path() + "': " + std::strerror(errno));
  const uint64_t header_len = header.size();
  WriteExactly(f.get(), &header_len, 8, path, tmp.path());
  WriteExactly(f.get(), header.data(), header.size(), path, tmp.path());
  // One tensor at a time, so at most one extra CPU copy is alive.
  for (const auto& [name, t] : tensors) {
    const at::Tensor cpu = t.to(at::kCPU).contiguous();
    WriteExactly(f.get(), cpu.data_ptr(), cpu.numel() * cpu.element_size(), path, tmp.path());
  }
  if (std::fflush(f.get()) != 0 || ::fsync(::fileno(f.get())) != 0) {
    Fail(path, "cannot flush '" + tmp.path() + "': " + std::strerror(errno));
  }
  if (std::fclose(f.release()) != 0) {
    Fail(path, "cannot close '" + tmp.path() + "': " + std::strerror(errno));
  }
  if (std::rename(tmp.path().c_str(), path.c_str()) != 0) {
    Fail(path, "cannot rename '" + tmp.path() + "' to the destination: " + std::strerror(errno));
  }
  tmp.Commit();
}

}  // namespace psaq::model
