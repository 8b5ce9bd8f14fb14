#include "model/detect/torchvision_ops.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/SymInt.h>
#include <c10/core/TensorOptions.h>
#include <torch/version.h>
#include <dlfcn.h>
#include <glob.h>

#include <algorithm>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace psaq::detect {
namespace {

constexpr const char* kDebianLibraryPattern =
    "/usr/lib/python3/dist-packages/torchvision/_C.cpython-*-x86_64-linux-gnu.so";

using NmsFn = at::Tensor(const at::Tensor&, const at::Tensor&, double);
using RoiAlignIntFn = at::Tensor(const at::Tensor&, const at::Tensor&, double, int64_t, int64_t,
                                 int64_t, bool);
using RoiAlignSymIntFn = at::Tensor(const at::Tensor&, const at::Tensor&, double, c10::SymInt,
                                    c10::SymInt, int64_t, bool);

// Filled once under g_once; read-only afterwards.
struct Loaded {
  TorchvisionOpsStatus status;
  std::optional<c10::TypedOperatorHandle<NmsFn>> nms;
  std::optional<c10::TypedOperatorHandle<RoiAlignIntFn>> roi_align_int;
  std::optional<c10::TypedOperatorHandle<RoiAlignSymIntFn>> roi_align_symint;
};
std::once_flag g_once;
Loaded g_loaded;

// "" when there is no default library for this build (see TorchvisionOpsOptions).
std::string DefaultLibraryPath() {
#ifdef PSAQ_TORCHVISION_OPS
  return PSAQ_TORCHVISION_OPS;
#endif
  if (TORCH_VERSION_MAJOR != 1 || TORCH_VERSION_MINOR != 13) return "";
  glob_t matches{};
  std::string path;
  if (::glob(kDebianLibraryPattern, 0, nullptr, &matches) == 0 && matches.gl_pathc > 0) {
    path = matches.gl_pathv[0];
  }
  ::globfree(&matches);
  return path;
}

// PSAQ_TORCHVISION_OPS_PRELOAD split at ':' (empty when not configured).
std::vector<std::string> DefaultPreload() {
  std::vector<std::string> paths;
#ifdef PSAQ_TORCHVISION_OPS_PRELOAD
  const std::string list = PSAQ_TORCHVISION_OPS_PRELOAD;
  size_t begin = 0;
  while (begin <= list.size()) {
    const size_t end = std::min(list.find(':', begin), list.size());
    if (end > begin) paths.push_back(list.substr(begin, end - begin));
    begin = end + 1;
  }
#endif
  return paths;
}

bool IsSymInt(const c10::Argument& argument) {
  return argument.type()->kind() == c10::TypeKind::SymIntType;
}

// Finds both operators and binds their typed handles; returns "" or the reason they don't fit.
std::string BindOperators(Loaded* loaded) {
  auto& dispatcher = c10::Dispatcher::singleton();
  const auto nms = dispatcher.findSchema({"torchvision::nms", ""});
  if (!nms) return "torchvision::nms is not registered";
  const auto roi_align = dispatcher.findSchema({"torchvision::roi_align", ""});
  if (!roi_align) return "torchvision::roi_align is not registered";
  // typed<>() checks the C++ signature against the registered schema and throws on a mismatch.
  try {
    loaded->nms = nms->typed<NmsFn>();
    const auto& args = roi_align->schema().arguments();
    if (args.size() == 7 && IsSymInt(args[3]) && IsSymInt(args[4])) {
      loaded->roi_align_symint = roi_align->typed<RoiAlignSymIntFn>();
    } else {
      loaded->roi_align_int = roi_align->typed<RoiAlignIntFn>();
    }
  } catch (const std::exception& e) {
    return std::string("unexpected operator schema (") + e.what() + ")";
  }
  return "";
}

void Load(const TorchvisionOpsOptions& options, Loaded* loaded) {
  TorchvisionOpsStatus& status = loaded->status;
  const bool by_default = options.library_path.empty();
  status.library = by_default ? DefaultLibraryPath() : options.library_path;
  if (status.library.empty()) {
    status.reason = TORCH_VERSION_MAJOR == 1 && TORCH_VERSION_MINOR == 13
                        ? std::string("torchvision operator library not found (no match for ") +
                              kDebianLibraryPattern + "; install python3-torchvision)"
                        : std::string("no torchvision operator library for LibTorch ") +
                              TORCH_VERSION + " (Debian's is built for 1.13; configure with "
                              "-DPSAQ_TORCHVISION_OPS=<a matching torchvision/_C.so>)";
    return;
  }
  // The dependencies go into the global scope: libtorch_python.so's references to Python's
  // symbols are resolved there, and _C.so's request for libtorch_python.so by name is met by the
  // copy already loaded instead of a search that could find another LibTorch's.
  for (const std::string& dependency : by_default ? DefaultPreload() : options.preload) {
    if (::dlopen(dependency.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) {
      const char* error = ::dlerror();
      status.reason = "cannot load " + dependency + " (loaded before " + status.library +
                      "): " + (error ? error : "dlopen failed");
      return;
    }
  }
  // RTLD_GLOBAL is not needed for the library itself: the operators register themselves with LibTorch's dispatcher in
  // the library's static initialisers. The handle is never closed (the registrations must live
  // as long as the process).
  if (::dlopen(status.library.c_str(), RTLD_NOW | RTLD_LOCAL) == nullptr) {
    const char* error = ::dlerror();
    status.reason = "cannot load " + status.library + ": " + (error ? error : "dlopen failed");
    return;
  }
  const std::string why = BindOperators(loaded);
  if (!why.empty()) {
    status.reason = status.library + ": " + why;
    return;
  }
  status.available = true;
}

const Loaded& RequireLoaded(const char* entry) {
  const TorchvisionOpsStatus& status = LoadTorchvisionOps();
  if (!status.available) {
    throw std::runtime_error(std::string("detect/torchvision_ops: ") + entry +
                             " unavailable: " + status.reason);
  }
  return g_loaded;
}

}  // namespace

const TorchvisionOpsStatus& LoadTorchvisionOps(const TorchvisionOpsOptions& options) {
  std::call_once(g_once, [&options] { Load(options, &g_loaded); });
  return g_loaded.status;
}

TorchvisionOpsStatus ProbeTorchvisionOps(const TorchvisionOpsOptions& options) {
  Loaded probe;
  Load(options, &probe);
  return probe.status;
}

bool TorchvisionOpsAvailable() { return LoadTorchvisionOps().available; }

bool TorchvisionOpsSupport(c10::DeviceType device_type) {
  if (!TorchvisionOpsAvailable()) return false;
  const c10::DispatchKey key =
      c10::computeDispatchKey(c10::nullopt, c10::kStrided, c10::Device(device_type));
  const Loaded& ops = g_loaded;
  const bool roi_align = ops.roi_align_symint ? ops.roi_align_symint->hasKernelForDispatchKey(key)
                                              : ops.roi_align_int->hasKernelForDispatchKey(key);
  return roi_align && ops.nms->hasKernelForDispatchKey(key);
}

at::Tensor TorchvisionRoiAlign(const at::Tensor& input, const at::Tensor& rois,
                               double spatial_scale, int64_t pooled_height, int64_t pooled_width,
                               int64_t sampling_ratio, bool aligned) {
  const Loaded& ops = RequireLoaded("torchvision::roi_align");
  if (ops.roi_align_symint) {
    return ops.roi_align_symint->call(input, rois, spatial_scale, c10::SymInt(pooled_height),
                                      c10::SymInt(pooled_width), sampling_ratio, aligned);
  }
  return ops.roi_align_int->call(input, rois, spatial_scale, pooled_height, pooled_width,
                                 sampling_ratio, aligned);
}

at::Tensor TorchvisionNms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
  return RequireLoaded("torchvision::nms").nms->call(boxes, scores, iou_threshold);
}

}  // namespace psaq::detect
