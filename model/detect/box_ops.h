// Box geometry on (x1, y1, x2, y2) boxes, as mmdetection 2.x: overlaps as bbox_overlaps
// (mmdet/core/bbox/iou_calculators/iou2d_calculator.py, no +1 in areas, union floored at eps),
// clipping as delta2bbox's clip_border, small-box filtering as the RPN's min_bbox_size.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace psaq::detect {

enum class IouMode {
  kIou,  // intersection / union (MaxIoUAssigner, NMS-like overlaps)
  kIof,  // intersection / area of the first box (mmdet's "iof": ignored-region overlaps)
};

// mmdet's eps for bbox_overlaps: the denominator is max(union or area, kBoxIouEps).
inline constexpr double kBoxIouEps = 1e-6;

// Pairwise overlaps: a [N, 4], b [M, 4], same float dtype and device -> [N, M] (a's boxes along
// rows, as bbox_overlaps(a, b)). Empty inputs give an [N, M] empty tensor. Throws (TORCH_CHECK)
// on bad shapes or dtypes.
at::Tensor BoxIou(const at::Tensor& a, const at::Tensor& b, IouMode mode = IouMode::kIou);

// Boxes [N, 4] with x clamped to [0, width] and y to [0, height] (mmdet's clip_border: the image
// edge, not the last pixel index). Returns a new tensor; differentiable.
at::Tensor ClipBoxes(const at::Tensor& boxes, int64_t height, int64_t width);

// bool [N]: boxes [N, 4] whose width AND height are > min_size (strictly), as mmdet's RPN
// _bbox_post_process with min_bbox_size (0 by default: drops degenerate boxes).
at::Tensor NonSmallBoxMask(const at::Tensor& boxes, double min_size);

// [N] areas (x2 - x1) * (y2 - y1).
at::Tensor BoxArea(const at::Tensor& boxes);

}  // namespace psaq::detect
