// RoIAlign (Mask R-CNN's bilinear RoI pooling) with torchvision.ops.roi_align's semantics
// (torchvision 0.14.1, csrc/ops/cpu/roi_align_kernel.cpp), which mmcv's RoIAlign (use_torchvision
// or not) and mmdetection's SingleRoIExtractor share for aligned=True.
//
// For RoI k = (b, x1, y1, x2, y2) and output bin (ph, pw) of an output [PH, PW]:
//   offset = aligned ? 0.5 : 0;  start = (x1, y1) * spatial_scale - offset;
//   size = (x2 - x1, y2 - y1) * spatial_scale, at least 1 x 1 when !aligned;
//   bin = size / (PW, PH);  grid = sampling_ratio > 0 ? sampling_ratio (both axes)
//                                                   : ceil(size / (PW, PH)) (per RoI, adaptive);
//   samples at start + (p + (i + 0.5) / grid) * bin for i < grid on each axis;
//   a sample with y < -1, y > H, x < -1 or x > W contributes 0; otherwise coordinates below 0 are
//   clamped to 0, and one at or beyond the last row/column uses that row/column alone; the value
//   is bilinear in the 4 neighbours;
//   output = sum of the samples / max(grid_h * grid_w, 1).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "model/detect/torchvision_ops.h"

namespace psaq::detect {

// input [N, C, H, W] float32/float64; rois [K, 5] (batch index, x1, y1, x2, y2) in the image
// coordinates that spatial_scale maps onto input (e.g. 1/stride), same dtype and device ->
// [K, C, pooled_height, pooled_width]. Differentiable w.r.t. input (not w.r.t. rois, as
// torchvision). sampling_ratio <= 0 means adaptive. kAuto uses torchvision's operator when
// TorchvisionOpsSupport(input's device type), else RoiAlignAten.
// Throws (TORCH_CHECK) on bad shapes/dtypes/devices, pooled sizes < 1, non-finite rois, or a
// batch index outside [0, N); kTorchvision throws std::runtime_error when the operator is
// unavailable.
at::Tensor RoiAlign(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                    int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio,
                    bool aligned, OpsBackend backend = OpsBackend::kAuto);

// Default bound on the feature elements RoiAlignAten gathers at once (per bilinear corner):
// 4M, 16 MB in float32.
inline constexpr int64_t kRoiAlignChunkElements = int64_t{1} << 22;

// The pure-ATen implementation (any device): gathers of the 4 bilinear neighbours of every
// sample with their weights and a mean over the samples, so autograd gives the input gradient.
// Works on chunks of RoIs (and of channels, when one RoI's samples times C exceed the bound) of
// about max_chunk_elements gathered elements each; the sample indices of one RoI
// (PH * grid_h * PW * grid_w) are never split. The result does not depend on the chunking.
at::Tensor RoiAlignAten(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                        int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio,
                        bool aligned, int64_t max_chunk_elements = kRoiAlignChunkElements);

}  // namespace psaq::detect
