#include "model/detect/roi_extractor.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include "model/detect/roi_align.h"
#include "model/detect/roi_levels.h"

namespace psaq::detect {

at::Tensor ExtractRoiFeatures(const std::vector<at::Tensor>& features, const at::Tensor& rois,
                              const RoiExtractorOptions& options) {
  const int64_t L = static_cast<int64_t>(options.strides.size());
  TORCH_CHECK(L > 0 && static_cast<int64_t>(features.size()) >= L, "ExtractRoiFeatures: needs ", L,
              " feature levels, got ", features.size());
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5, "ExtractRoiFeatures: rois must be [R, 5], got ",
              rois.sizes());
  const at::Tensor& f0 = features.front();
  const int64_t S = options.output_size;
  at::Tensor out = at::zeros({rois.size(0), f0.size(1), S, S}, f0.options());
  if (rois.size(0) == 0) return out;
  const at::Tensor levels = MapRoiLevels(rois, L, options.finest_scale);
  for (int64_t l = 0; l < L; ++l) {
    const at::Tensor inds = (levels == l).nonzero().squeeze(1);
    if (inds.numel() == 0) continue;
    const at::Tensor pooled =
        RoiAlign(features[static_cast<size_t>(l)], rois.index_select(0, inds),
                 1.0 / static_cast<double>(options.strides[static_cast<size_t>(l)]), S, S,
                 options.sampling_ratio, /*aligned=*/true);
    out = out.index_copy(0, inds, pooled);
  }
  return out;
}

at::Tensor BoxesToRois(const std::vector<at::Tensor>& boxes) {
  std::vector<at::Tensor> rois;
  for (size_t b = 0; b < boxes.size(); ++b) {
    rois.push_back(at::cat(
        {at::full({boxes[b].size(0), 1}, static_cast<double>(b), boxes[b].options()), boxes[b]},
        1));
  }
  return at::cat(rois);
}

}  // namespace psaq::detect
