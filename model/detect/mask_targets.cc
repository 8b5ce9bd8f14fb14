#include "model/detect/mask_targets.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include "model/detect/roi_align.h"

namespace psaq::detect {

at::Tensor MaskTargets(const at::Tensor& pos_boxes, const at::Tensor& gt_masks,
                       const at::Tensor& pos_gt_inds, int64_t mask_size) {
  TORCH_CHECK(pos_boxes.dim() == 2 && pos_boxes.size(1) == 4 && gt_masks.dim() == 3 &&
                  pos_gt_inds.dim() == 1 && pos_gt_inds.size(0) == pos_boxes.size(0) &&
                  pos_gt_inds.scalar_type() == at::kLong && mask_size >= 1,
              "MaskTargets: expected pos_boxes [P, 4], gt_masks [G, H, W], pos_gt_inds int64 [P], "
              "mask_size >= 1, got ",
              pos_boxes.sizes(), ", ", gt_masks.sizes(), ", ", pos_gt_inds.sizes(), ", ",
              mask_size);
  const int64_t p = pos_boxes.size(0);
  if (p == 0) return at::zeros({0, mask_size, mask_size}, pos_boxes.options());
  TORCH_CHECK(pos_gt_inds.min().item<int64_t>() >= 0 &&
                  pos_gt_inds.max().item<int64_t>() < gt_masks.size(0),
              "MaskTargets: pos_gt_inds must be in [0, ", gt_masks.size(0), ")");
  const int64_t h = gt_masks.size(1), w = gt_masks.size(2);
  // mmdet clips the proposals to the mask before cropping.
  at::Tensor boxes = pos_boxes.detach().clone();
  boxes.select(1, 0).clamp_(0, w);
  boxes.select(1, 2).clamp_(0, w);
  boxes.select(1, 1).clamp_(0, h);
  boxes.select(1, 3).clamp_(0, h);
  // One RoIAlign over the G masks as a batch, each RoI reading its gt's mask (mmdet gathers the
  // masks per RoI first: the same values).
  const at::Tensor rois = at::cat({pos_gt_inds.to(boxes.scalar_type()).unsqueeze(1), boxes}, 1);
  const at::Tensor masks = gt_masks.to(boxes.scalar_type()).unsqueeze(1);
  const at::Tensor resized = RoiAlign(masks, rois, 1.0, mask_size, mask_size, 0, /*aligned=*/true);
  return resized.squeeze(1).ge(0.5).to(boxes.scalar_type());
}

}  // namespace psaq::detect
