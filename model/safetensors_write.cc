// Writing safetensors files; the format and the guarantees are in model/safetensors.h.
#include <ATen/ATen.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>

#include "dist/base/atomic_file.h"
#include "model/safetensors.h"
#include "model/safetensors_format.h"

namespace psaq::model {
namespace {

using safetensors_internal::DtypeByType;
using safetensors_internal::DtypeInfo;
using safetensors_internal::Fail;

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
  try {
    base::AtomicFile out(path);
    const uint64_t header_len = header.size();
    out.Append(&header_len, 8);
    out.Append(header.data(), header.size());
    // One tensor at a time, so at most one extra CPU copy is alive.
    for (const auto& [name, t] : tensors) {
      const at::Tensor cpu = t.to(at::kCPU).contiguous();
      out.Append(cpu.data_ptr(), cpu.numel() * cpu.element_size());
    }
    out.Commit();
  } catch (const SafetensorsError&) {
    throw;
  } catch (const std::runtime_error& e) {  // the writer's "<path>: <reason>", as our error type
    throw SafetensorsError(e.what());
  }
}

}  // namespace psaq::model
