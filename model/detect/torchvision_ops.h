// torchvision's compiled RoIAlign and NMS, reached through LibTorch's dispatcher.
//
// torchvision ships its operators in a shared library (Debian's python3-torchvision 0.14.1:
// /usr/lib/python3/dist-packages/torchvision/_C.cpython-*-x86_64-linux-gnu.so, built for Debian's
// LibTorch 1.13). Loading it with dlopen runs its static registrations, after which
// `torchvision::nms` and `torchvision::roi_align` are ordinary dispatcher operators (with CPU and,
// in a CUDA build, CUDA kernels and an autograd kernel for roi_align). There are no headers: the
// schemas below are the ones torchvision 0.14.1 registers (torchvision/csrc/ops/nms.cpp and
// roi_align.cpp; checked against the schema strings in Debian's 0.14.1 library):
//   torchvision::nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor
//   torchvision::roi_align(Tensor input, Tensor rois, float spatial_scale, int pooled_height,
//                          int pooled_width, int sampling_ratio, bool aligned) -> Tensor
// (Later torchvision releases declare pooled_height/pooled_width as SymInt; both forms are
// accepted, the SymInt one untested here.)
//
// Nothing here throws on a missing or incompatible library: LoadTorchvisionOps reports it, and the
// front doors in roi_align.h / nms.h fall back to the pure-ATen implementations. Only calling
// TorchvisionRoiAlign / TorchvisionNms while the operators are unavailable throws.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/DeviceType.h>

#include <cstdint>
#include <string>
#include <vector>

namespace psaq::detect {

// Which implementation a front door (RoiAlign, Nms, BatchedNms) runs: torchvision's operators
// when loaded with kernels for the tensors' device type, else the pure-ATen fallback (kAuto); or
// one of them explicitly (tests hold them to each other). kTorchvision throws when the operators
// are unavailable.
enum class OpsBackend { kAuto, kTorchvision, kAten };

struct TorchvisionOpsOptions {
  // The operator library to dlopen. Empty: the build's default, the CMake cache variable
  // PSAQ_TORCHVISION_OPS when set (e.g. a PyPI wheel's torchvision/_C.so for a LibTorch 2.x
  // build), else, built against LibTorch 1.13 only, the first match of Debian's location
  // /usr/lib/python3/dist-packages/torchvision/_C.cpython-*-x86_64-linux-gnu.so (Debian's
  // library links LibTorch 1.13: loading it beside another LibTorch would put two in the process,
  // so any other version reports the operators unavailable instead). A library set here must
  // match this LibTorch's version.
  std::string library_path;
  // Libraries loaded (RTLD_GLOBAL, in order) before library_path, for an operator library whose
  // dependencies the process cannot find or resolve by itself: a PyPI wheel's torchvision/_C.so
  // needs torch's libtorch_python.so, which needs the Python library's symbols. Used with a
  // non-empty library_path; the default library comes with the build's default list, the CMake
  // cache variable PSAQ_TORCHVISION_OPS_PRELOAD (colon-separated). A library that fails to load
  // makes the operators unavailable, with its path and the loader's message as the reason.
  std::vector<std::string> preload = {};
};

struct TorchvisionOpsStatus {
  bool available = false;  // both operators found with the expected schemas
  std::string library;     // the path that was (or would have been) loaded
  std::string reason;      // why not, when !available (one line: path and cause)
};

// Loads the library and looks up both operators. The attempt is made ONCE per process (the
// first caller's options win; later calls, with any options, return the same status), guarded
// so that concurrent first calls are safe. Never throws.
const TorchvisionOpsStatus& LoadTorchvisionOps(const TorchvisionOpsOptions& options = {});

// Loads and checks the library of `options` and reports the result without making it the one
// the front doors use and without caching (diagnostics, tests). Never throws. Note that loading
// registers the operators process-wide: a later LoadTorchvisionOps with another path can find them.
TorchvisionOpsStatus ProbeTorchvisionOps(const TorchvisionOpsOptions& options);

// LoadTorchvisionOps().available (loads with the default options if nothing was loaded yet, so
// a caller with an override path calls LoadTorchvisionOps(options) before any front door).
bool TorchvisionOpsAvailable();

// Whether both loaded operators have kernels for tensors on `device_type` (a CPU-only build has
// CPU kernels only; a CUDA build adds CUDA). False when unavailable. The front doors use
// torchvision only for device types it supports.
bool TorchvisionOpsSupport(c10::DeviceType device_type);

// torchvision::roi_align. input [N, C, H, W] float/double; rois [K, 5] (batch index, x1, y1,
// x2, y2) in image coordinates, same dtype and device as input -> [K, C, pooled_height,
// pooled_width]. Differentiable w.r.t. input (torchvision's autograd kernel). Throws
// std::runtime_error when the operators are unavailable (with the reason), and whatever
// torchvision's checks throw (c10::Error) on bad shapes.
at::Tensor TorchvisionRoiAlign(const at::Tensor& input, const at::Tensor& rois,
                               double spatial_scale, int64_t pooled_height, int64_t pooled_width,
                               int64_t sampling_ratio, bool aligned);

// torchvision::nms. boxes [N, 4] (x1, y1, x2, y2), scores [N] of the same dtype -> int64 [M]
// indices of the kept boxes in decreasing score order. Throws as TorchvisionRoiAlign.
at::Tensor TorchvisionNms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold);

}  // namespace psaq::detect
