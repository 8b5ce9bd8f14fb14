// Mask targets of the mask head, as mmdetection 2.x's mask_target_single
// (mmdet/core/mask/mask_target.py) with BitmapMasks.crop_and_resize (mmdet/core/mask/
// structures.py): each positive RoI, clipped to the image ([0, W] x [0, H]), crops its gt's
// binary mask and resizes it to mask_size x mask_size by RoIAlign (scale 1, sampling ratio 0
// (adaptive), aligned=True, average), then binarises it at >= 0.5.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace psaq::detect {

// pos_boxes [P, 4] float, gt_masks bool/uint8 [G, H, W], pos_gt_inds int64 [P] in [0, G) ->
// float [P, mask_size, mask_size] of 0/1 (same dtype as pos_boxes; [0, S, S] when P = 0).
// Throws (TORCH_CHECK) on bad shapes, indices or mask_size < 1.
at::Tensor MaskTargets(const at::Tensor& pos_boxes, const at::Tensor& gt_masks,
                       const at::Tensor& pos_gt_inds, int64_t mask_size);

}  // namespace psaq::detect
