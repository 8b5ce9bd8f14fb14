// Pasting the mask head's [M, M] probabilities into the image, as mmdetection 2.x's
// FCNMaskHead.get_seg_masks / _do_paste_mask (mmdet/models/roi_heads/mask_heads/fcn_mask_head.py).
//
// For a box (x0, y0, x1, y1) and image pixel (x, y) (centre x + 0.5, y + 0.5), the mask is sampled
// with grid_sample(bilinear, zeros padding, align_corners=False) at
//   u = (x + 0.5 - x0) / (x1 - x0) * 2 - 1,   v = (y + 0.5 - y0) / (y1 - y0) * 2 - 1
// (an infinite u or v, from a zero-width or zero-height box, becomes 0, as mmdet), in float32.
// With skip_empty (mmdet's CPU path, one mask at a time) only pixels of
// [max(floor(x0) - 1, 0), min(ceil(x1) + 1, W)) x [same for y] are sampled and every other pixel
// is 0; without it (mmdet's GPU path) the whole image is sampled. The two differ where the
// bilinear footprint reaches past the one-pixel margin (boxes wider than 2 pixels per mask cell).
// A mask pixel is set when its probability is >= threshold (mmdet's mask_thr_binary 0.5).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace psaq::detect {

struct PasteMasksOptions {
  double threshold = 0.5;  // mask_thr_binary
  bool skip_empty = true;  // mmdet's CPU behaviour (see above); false: its GPU behaviour
};

// masks [N, Mh, Mw] probabilities, boxes [N, 4] (x1, y1, x2, y2) in image pixels (any float
// dtype; computed in float32), image height x width -> float32 [N, height, width] sampled
// probabilities (before thresholding). Throws (TORCH_CHECK) on bad shapes or sizes, or
// non-finite boxes.
at::Tensor PasteMaskProbs(const at::Tensor& masks, const at::Tensor& boxes, int64_t height,
                          int64_t width, bool skip_empty = true);

// bool [N, height, width]: PasteMaskProbs(...) >= options.threshold.
at::Tensor PasteMasks(const at::Tensor& masks, const at::Tensor& boxes, int64_t height,
                      int64_t width, const PasteMasksOptions& options = {});

}  // namespace psaq::detect
