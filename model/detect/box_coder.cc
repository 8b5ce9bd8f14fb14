#include "model/detect/box_coder.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <vector>

namespace psaq::detect {
namespace {

at::Tensor AsRow(const std::array<double, 4>& values, const at::Tensor& like) {
  return at::tensor(std::vector<double>(values.begin(), values.end()),
                    like.options().dtype(at::kDouble))
      .to(like.scalar_type())
      .view({1, 4});
}

void CheckBoxes(const at::Tensor& boxes, const char* what) {
  TORCH_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, "DeltaXYWHBBoxCoder: ", what,
              " must be [N, 4], got ", boxes.sizes());
  TORCH_CHECK(at::isFloatingType(boxes.scalar_type()), "DeltaXYWHBBoxCoder: ", what,
              " must be floating point");
}

}  // namespace

DeltaXYWHBBoxCoder::DeltaXYWHBBoxCoder(DeltaXYWHBBoxCoderOptions options) : options_(options) {
  for (double s : options_.target_stds) {
    TORCH_CHECK(s > 0, "DeltaXYWHBBoxCoder: target_stds must be > 0, got ", s);
  }
  TORCH_CHECK(options_.wh_ratio_clip > 0 && options_.wh_ratio_clip < 1,
              "DeltaXYWHBBoxCoder: wh_ratio_clip must be in (0, 1), got ", options_.wh_ratio_clip);
}

at::Tensor DeltaXYWHBBoxCoder::Encode(const at::Tensor& proposals, const at::Tensor& gt) const {
  CheckBoxes(proposals, "proposals");
  CheckBoxes(gt, "gt");
  TORCH_CHECK(proposals.size(0) == gt.size(0) && proposals.scalar_type() == gt.scalar_type(),
              "DeltaXYWHBBoxCoder: proposals ", proposals.sizes(), " and gt ", gt.sizes(),
              " must match in N and dtype");
  auto col = [](const at::Tensor& t, int64_t i) { return t.select(1, i); };
  const at::Tensor px = (col(proposals, 0) + col(proposals, 2)) * 0.5;
  const at::Tensor py = (col(proposals, 1) + col(proposals, 3)) * 0.5;
  const at::Tensor pw = col(proposals, 2) - col(proposals, 0);
  const at::Tensor ph = col(proposals, 3) - col(proposals, 1);
  const at::Tensor gx = (col(gt, 0) + col(gt, 2)) * 0.5;
  const at::Tensor gy = (col(gt, 1) + col(gt, 3)) * 0.5;
  const at::Tensor gw = col(gt, 2) - col(gt, 0);
  const at::Tensor gh = col(gt, 3) - col(gt, 1);
  const at::Tensor deltas =
      at::stack({(gx - px) / pw, (gy - py) / ph, at::log(gw / pw), at::log(gh / ph)}, -1);
  return (deltas - AsRow(options_.target_means, deltas)) / AsRow(options_.target_stds, deltas);
}

at::Tensor DeltaXYWHBBoxCoder::Decode(const at::Tensor& rois, const at::Tensor& deltas,
                                      std::optional<std::pair<int64_t, int64_t>> max_shape) const {
  CheckBoxes(rois, "rois");
  TORCH_CHECK(deltas.dim() == 2 && deltas.size(1) > 0 && deltas.size(1) % 4 == 0 &&
                  deltas.size(0) == rois.size(0),
              "DeltaXYWHBBoxCoder: deltas must be [N, 4 * J] with N = ", rois.size(0), ", got ",
              deltas.sizes());
  TORCH_CHECK(deltas.scalar_type() == rois.scalar_type(),
              "DeltaXYWHBBoxCoder: rois and deltas must have the same dtype");
  if (max_shape) {
    TORCH_CHECK(max_shape->first > 0 && max_shape->second > 0,
                "DeltaXYWHBBoxCoder: max_shape must be positive, got ", max_shape->first, " x ",
                max_shape->second);
  }
  const int64_t n = rois.size(0), per_roi = deltas.size(1) / 4;
  if (n == 0) return deltas;
  const at::Tensor d = deltas.reshape({-1, 4}) * AsRow(options_.target_stds, deltas) +
                       AsRow(options_.target_means, deltas);
  const at::Tensor r = rois.repeat({1, per_roi}).reshape({-1, 4});
  const at::Tensor pxy = (r.slice(1, 0, 2) + r.slice(1, 2, 4)) * 0.5;
  const at::Tensor pwh = r.slice(1, 2, 4) - r.slice(1, 0, 2);
  const double max_ratio = std::abs(std::log(options_.wh_ratio_clip));
  const at::Tensor dwh = d.slice(1, 2, 4).clamp(-max_ratio, max_ratio);
  const at::Tensor gxy = pxy + pwh * d.slice(1, 0, 2);
  const at::Tensor gwh = pwh * dwh.exp();
  at::Tensor boxes = at::cat({gxy - gwh * 0.5, gxy + gwh * 0.5}, -1);  // [N * J, 4]
  if (max_shape) {
    const double h = static_cast<double>(max_shape->first);
    const double w = static_cast<double>(max_shape->second);
    boxes = at::stack({boxes.select(1, 0).clamp(0.0, w), boxes.select(1, 1).clamp(0.0, h),
                       boxes.select(1, 2).clamp(0.0, w), boxes.select(1, 3).clamp(0.0, h)},
                      -1);
  }
  return boxes.reshape({n, -1});
}

}  // namespace psaq::detect
