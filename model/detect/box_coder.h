// Box regression targets, as mmdetection 2.x's DeltaXYWHBBoxCoder (bbox2delta / delta2bbox in
// mmdet/core/bbox/coder/delta_xywh_bbox_coder.py) with add_ctr_clamp off.
//
// With p = a proposal/anchor and g = a box, centres (px, py) = ((x1 + x2)/2, (y1 + y2)/2) and
// sizes pw = x2 - x1, ph = y2 - y1:
//   encode: d = ((gx - px) / pw, (gy - py) / ph, log(gw / pw), log(gh / ph)); (d - means) / stds
//   decode: d' = d * stds + means; dw, dh clamped to +-|log(wh_ratio_clip)|;
//           centre = p_centre + p_size * (dx, dy); size = p_size * exp(dw, dh);
//           box = centre -+ size / 2, then (when max_shape is given) x clamped to [0, W] and
//           y to [0, H] (mmdet's clip_border).
// mask_rcnn_swin_fpn uses means 0 with stds (1, 1, 1, 1) in the RPN and (0.1, 0.1, 0.2, 0.2) in
// the box head.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <optional>
#include <utility>

namespace psaq::detect {

struct DeltaXYWHBBoxCoderOptions {
  std::array<double, 4> target_means = {0.0, 0.0, 0.0, 0.0};
  std::array<double, 4> target_stds = {1.0, 1.0, 1.0, 1.0};  // RPN; the box head: .1,.1,.2,.2
  double wh_ratio_clip = 16.0 / 1000.0;  // bounds |dw|, |dh| by |log(wh_ratio_clip)| in decode
};

class DeltaXYWHBBoxCoder {
 public:
  // Throws (TORCH_CHECK) on a non-positive std or wh_ratio_clip outside (0, 1).
  explicit DeltaXYWHBBoxCoder(DeltaXYWHBBoxCoderOptions options = {});

  // proposals [N, 4], gt [N, 4] (x1, y1, x2, y2), same float dtype -> deltas [N, 4].
  // Degenerate proposals (zero width/height) give inf/nan, as mmdet.
  at::Tensor Encode(const at::Tensor& proposals, const at::Tensor& gt) const;

  // rois [N, 4], deltas [N, 4 * J] (J boxes per RoI, e.g. one per class, as mmdet's
  // class-specific box head) -> boxes [N, 4 * J]. max_shape = (H, W) of the image to clip to, or
  // nullopt for no clipping. N = 0 gives deltas back. Differentiable w.r.t. deltas.
  at::Tensor Decode(const at::Tensor& rois, const at::Tensor& deltas,
                    std::optional<std::pair<int64_t, int64_t>> max_shape = std::nullopt) const;

  const DeltaXYWHBBoxCoderOptions& options() const { return options_; }

 private:
  DeltaXYWHBBoxCoderOptions options_;
};

}  // namespace psaq::detect
