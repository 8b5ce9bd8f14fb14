// mmdetection's SingleRoIExtractor (mmdet/models/roi_heads/roi_extractors/
// single_level_roi_extractor.py) with RoIAlign(aligned=True, pool_mode avg): each RoI is pooled
// from the one FPN level MapRoiLevels (roi_levels.h) assigns it, with spatial_scale 1/stride.
// No parameters.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace psaq::detect {

struct RoiExtractorOptions {
  int64_t output_size = 7;                        // 7 (boxes) or 14 (masks)
  int64_t sampling_ratio = 0;                     // 0: adaptive, as mmdet's configs
  std::vector<int64_t> strides = {4, 8, 16, 32};  // featmap_strides: one per level used
  double finest_scale = 56;
};

// features: at least strides.size() levels [B, C, H_l, W_l] (only the first strides.size() are
// used, as mmdet's num_inputs); rois [R, 5] (image index, x1, y1, x2, y2) in input pixels, same
// dtype -> [R, C, S, S] (zeros for R = 0). Throws c10::Error on bad shapes.
at::Tensor ExtractRoiFeatures(const std::vector<at::Tensor>& features, const at::Tensor& rois,
                              const RoiExtractorOptions& options);

// RoIs [R, 5] (image index b, x1, y1, x2, y2) of per-image boxes boxes[b] [N_b, 4] (mmdet's
// bbox2roi). REQUIRES: boxes non-empty (an image may have no box).
at::Tensor BoxesToRois(const std::vector<at::Tensor>& boxes);

}  // namespace psaq::detect
