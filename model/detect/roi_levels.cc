#include "model/detect/roi_levels.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

namespace psaq::detect {

at::Tensor MapRoiLevels(const at::Tensor& rois, int64_t num_levels, double finest_scale) {
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5 && rois.is_floating_point(),
              "MapRoiLevels: expected floating rois [R, 5], got ", rois.sizes(), " ",
              rois.scalar_type());
  TORCH_CHECK(num_levels >= 1 && finest_scale > 0,
              "MapRoiLevels: num_levels must be >= 1 and finest_scale > 0");
  using at::indexing::Slice;
  const at::Tensor w = rois.select(1, 3) - rois.select(1, 1);
  const at::Tensor h = rois.select(1, 4) - rois.select(1, 2);
  const at::Tensor scale = at::sqrt(w * h);
  const at::Tensor level = at::floor(at::log2(scale / finest_scale + 1e-6));
  return level.clamp(0, static_cast<double>(num_levels - 1)).to(at::kLong);
}

}  // namespace psaq::detect
