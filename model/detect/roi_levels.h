// mmdetection's SingleRoIExtractor.map_roi_levels (mmdet/models/roi_heads/roi_extractors/
// single_level_roi_extractor.py): which FPN level a RoI is pooled from.
//   scale = sqrt((x2 - x1) · (y2 - y1))
//   level = clamp(floor(log2(scale / finest_scale + 1e-6)), 0, num_levels - 1)
// (finest_scale 56: RoIs under 112 px on a side go to level 0, 112-224 to 1, 224-448 to 2, ...).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace psaq::detect {

// rois: [R, 5] (batch index, x1, y1, x2, y2), floating -> int64 [R] levels in [0, num_levels).
// Throws c10::Error for a wrong shape or num_levels < 1. A degenerate RoI (zero area) gets
// level 0 (log2 of 1e-6 is negative), as mmdet.
at::Tensor MapRoiLevels(const at::Tensor& rois, int64_t num_levels, double finest_scale = 56);

}  // namespace psaq::detect
