#include "model/detect/box_ops.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

namespace psaq::detect {
namespace {

void CheckBoxes(const at::Tensor& boxes, const char* entry) {
  TORCH_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, entry, ": boxes must be [N, 4], got ",
              boxes.sizes());
  TORCH_CHECK(at::isFloatingType(boxes.scalar_type()), entry,
              ": boxes must be floating point, got ", boxes.scalar_type());
}

}  // namespace

at::Tensor BoxArea(const at::Tensor& boxes) {
  CheckBoxes(boxes, "BoxArea");
  return (boxes.select(1, 2) - boxes.select(1, 0)) * (boxes.select(1, 3) - boxes.select(1, 1));
}

at::Tensor BoxIou(const at::Tensor& a, const at::Tensor& b, IouMode mode) {
  CheckBoxes(a, "BoxIou");
  CheckBoxes(b, "BoxIou");
  TORCH_CHECK(a.scalar_type() == b.scalar_type() && a.device() == b.device(),
              "BoxIou: both box sets must have the same dtype and device");
  if (a.size(0) == 0 || b.size(0) == 0) return at::zeros({a.size(0), b.size(0)}, a.options());
  const at::Tensor area_a = BoxArea(a);
  const at::Tensor lt = at::max(a.slice(1, 0, 2).unsqueeze(1), b.slice(1, 0, 2).unsqueeze(0));
  const at::Tensor rb = at::min(a.slice(1, 2, 4).unsqueeze(1), b.slice(1, 2, 4).unsqueeze(0));
  const at::Tensor wh = (rb - lt).clamp_min(0);
  const at::Tensor overlap = wh.select(2, 0) * wh.select(2, 1);  // [N, M]
  const at::Tensor denominator = mode == IouMode::kIou
                                     ? area_a.unsqueeze(1) + BoxArea(b).unsqueeze(0) - overlap
                                     : area_a.unsqueeze(1).expand_as(overlap);
  return overlap / denominator.clamp_min(kBoxIouEps);
}

at::Tensor ClipBoxes(const at::Tensor& boxes, int64_t height, int64_t width) {
  CheckBoxes(boxes, "ClipBoxes");
  TORCH_CHECK(height > 0 && width > 0, "ClipBoxes: image size must be positive, got ", height,
              " x ", width);
  const double h = static_cast<double>(height), w = static_cast<double>(width);
  return at::stack({boxes.select(1, 0).clamp(0.0, w), boxes.select(1, 1).clamp(0.0, h),
                    boxes.select(1, 2).clamp(0.0, w), boxes.select(1, 3).clamp(0.0, h)},
                   1);
}

at::Tensor NonSmallBoxMask(const at::Tensor& boxes, double min_size) {
  CheckBoxes(boxes, "NonSmallBoxMask");
  const at::Tensor w = boxes.select(1, 2) - boxes.select(1, 0);
  const at::Tensor h = boxes.select(1, 3) - boxes.select(1, 1);
  return (w > min_size) & (h > min_size);
}

}  // namespace psaq::detect
