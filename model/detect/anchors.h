// Anchors of the RPN, as mmdetection 2.x's AnchorGenerator (mmdet/core/anchor/anchor_generator.py)
// configured by mask_rcnn_swin_fpn: strides [4, 8, 16, 32, 64], base sizes = strides, scales [8],
// ratios [0.5, 1.0, 2.0], scale_major, center_offset 0.
//
// Base anchors of a level with base size s (all in float32, as mmdet computes them from
// torch.Tensor scales/ratios), for each ratio r (outer) and scale c (inner), index r_i * S + c_i:
//   h_ratio = sqrt(r), w_ratio = 1 / h_ratio, w = s * w_ratio * c, h = s * h_ratio * c,
//   anchor = (cx - w/2, cy - h/2, cx + w/2, cy + h/2) with cx = cy = center_offset * s.
// E.g. stride 4, ratio 0.5, scale 8: w = 4 * sqrt(2) * 8 = 45.2548, h = 22.6274 ->
// (-22.6274, -11.3137, 22.6274, 11.3137).
// Grid anchors of a [Hf, Wf] feature map (mmdet's single_level_grid_priors): the base anchors
// shifted by (x * stride, y * stride) for every cell, rows outer (y), then columns (x), then the A
// base anchors: index (y * Wf + x) * A + a -- the order of the RPN head's outputs
// [A * 4, Hf, Wf] permuted to [Hf, Wf, A * 4] and flattened, as mmdet's RPNHead does.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace psaq::detect {

struct AnchorGeneratorOptions {
  std::vector<int64_t> strides = {4, 8, 16, 32, 64};  // one per level (square strides)
  std::vector<double> scales = {8.0};                 // anchor size = base size * scale
  std::vector<double> ratios = {0.5, 1.0, 2.0};       // height / width
  // Empty: the strides (mmdet's default). Otherwise one per level.
  std::vector<double> base_sizes;
  double center_offset = 0.0;  // in units of the base size (mmdet: 0)
};

class AnchorGenerator {
 public:
  // Throws (TORCH_CHECK) on empty or non-positive strides/scales/ratios, or base_sizes of the
  // wrong length.
  explicit AnchorGenerator(AnchorGeneratorOptions options = {});

  int64_t num_levels() const { return static_cast<int64_t>(base_anchors_.size()); }
  // A: anchors per cell = ratios * scales (3 for Mask R-CNN).
  int64_t num_base_anchors() const { return base_anchors_.front().size(0); }
  // [A, 4] float32 base anchors of a level (CPU).
  const at::Tensor& base_anchors(int64_t level) const;

  // [Hf * Wf * A, 4] float32 anchors of one level on `device`, in the order above.
  at::Tensor GridAnchors(int64_t level, int64_t feat_h, int64_t feat_w,
                         c10::Device device = c10::kCPU) const;
  // One GridAnchors per level; feat_sizes[l] = (Hf, Wf).
  std::vector<at::Tensor> GridAnchors(const std::vector<std::pair<int64_t, int64_t>>& feat_sizes,
                                      c10::Device device = c10::kCPU) const;

 private:
  AnchorGeneratorOptions options_;
  std::vector<at::Tensor> base_anchors_;
};

}  // namespace psaq::detect
