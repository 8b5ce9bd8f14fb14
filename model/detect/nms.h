// Non-maximum suppression with torchvision.ops.nms / batched_nms semantics (torchvision 0.14.1,
// csrc/ops/cpu/nms_kernel.cpp and ops/boxes.py), which mmcv's nms / batched_nms follow for the
// RPN's proposals and the per-class detections of mmdetection's Mask R-CNN.
//
// Boxes are (x1, y1, x2, y2) with areas (x2 - x1) * (y2 - y1) (no +1). Candidates are visited in
// decreasing score order, tied scores in increasing index order (a stable sort, as torchvision's
// CPU kernel); a visited box that is not suppressed is kept and
// suppresses every later box whose IoU with it is > iou_threshold (strictly), the IoU computed in
// the boxes' dtype.
#pragma once

#include <ATen/core/Tensor.h>

#include "model/detect/torchvision_ops.h"

namespace psaq::detect {

// boxes [N, 4], scores [N], same float dtype and device -> int64 [M] (same device) indices of the
// kept boxes, highest score first. N = 0 gives []. kAuto uses torchvision's operator when
// TorchvisionOpsSupport(boxes' device type), else NmsAten. Throws (TORCH_CHECK) on bad
// shapes/dtypes/devices.
at::Tensor Nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold,
               OpsBackend backend = OpsBackend::kAuto);

// The fallback: the same greedy loop on the host (CUDA inputs are copied to the CPU; the result
// goes back to their device).
at::Tensor NmsAten(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold);

// NMS within each class: boxes of different idxs never suppress each other. As torchvision's
// _batched_nms_coordinate_trick (and mmcv's batched_nms below its split threshold): every box is
// shifted by idxs * (boxes.max() + 1) in both coordinates, then one Nms runs on the shifted boxes.
// boxes [N, 4], scores [N], idxs [N] integer (class or level ids, >= 0) -> int64 [M] indices,
// highest score first. N = 0 gives [].
at::Tensor BatchedNms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& idxs,
                      double iou_threshold, OpsBackend backend = OpsBackend::kAuto);

}  // namespace psaq::detect
