#include "model/detect/paste_masks.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>

namespace psaq::detect {
namespace {

// Normalised grid coordinates of pixel centres [begin, end) over [lo, hi] per box: [n, end-begin].
at::Tensor GridCoords(int64_t begin, int64_t end, const at::Tensor& lo, const at::Tensor& hi) {
  const at::Tensor centres = at::arange(begin, end, lo.options()) + 0.5;
  at::Tensor u = (centres.unsqueeze(0) - lo.unsqueeze(1)) / (hi - lo).unsqueeze(1) * 2 - 1;
  return at::where(u.isinf(), at::zeros_like(u), u);  // mmdet zeroes infinities
}

// mmdet's _do_paste_mask for the boxes of `masks` over the pixel window [x0, x1) x [y0, y1):
// [n, y1 - y0, x1 - x0].
at::Tensor SampleWindow(const at::Tensor& masks, const at::Tensor& boxes, int64_t x0, int64_t y0,
                        int64_t x1, int64_t y1) {
  const int64_t n = masks.size(0);
  const at::Tensor gx = GridCoords(x0, x1, boxes.select(1, 0), boxes.select(1, 2));  // [n, w]
  const at::Tensor gy = GridCoords(y0, y1, boxes.select(1, 1), boxes.select(1, 3));  // [n, h]
  const int64_t h = y1 - y0, w = x1 - x0;
  const at::Tensor grid =
      at::stack({gx.unsqueeze(1).expand({n, h, w}), gy.unsqueeze(2).expand({n, h, w})}, 3);
  return at::grid_sampler(masks.unsqueeze(1), grid, /*interpolation_mode=*/0,
                          /*padding_mode=*/0, /*align_corners=*/false)
      .select(1, 0);
}

}  // namespace

at::Tensor PasteMaskProbs(const at::Tensor& masks, const at::Tensor& boxes, int64_t height,
                          int64_t width, bool skip_empty) {
  TORCH_CHECK(masks.dim() == 3 && masks.size(1) > 0 && masks.size(2) > 0,
              "PasteMasks: masks must be [N, Mh, Mw], got ", masks.sizes());
  TORCH_CHECK(boxes.dim() == 2 && boxes.size(1) == 4 && boxes.size(0) == masks.size(0),
              "PasteMasks: boxes must be [N, 4] with N = ", masks.size(0), ", got ", boxes.sizes());
  TORCH_CHECK(at::isFloatingType(masks.scalar_type()) && at::isFloatingType(boxes.scalar_type()),
              "PasteMasks: masks and boxes must be floating point");
  TORCH_CHECK(height > 0 && width > 0, "PasteMasks: image size must be positive, got ", height,
              " x ", width);
  TORCH_CHECK(boxes.isfinite().all().item<bool>(), "PasteMasks: boxes must be finite");
  const at::Tensor m = masks.to(at::kFloat);
  const at::Tensor b = boxes.to(m.device(), at::kFloat);
  const int64_t n = m.size(0);
  if (!skip_empty || n == 0) {
    if (n == 0) return at::zeros({0, height, width}, m.options());
    return SampleWindow(m, b, 0, 0, width, height);
  }
  at::Tensor out = at::zeros({n, height, width}, m.options());
  const at::Tensor corners = b.cpu();
  const auto acc = corners.accessor<float, 2>();
  for (int64_t i = 0; i < n; ++i) {
    // mmdet's window: floor(x0) - 1 .. ceil(x1) + 1, clipped to the image (truncated to int32).
    const int64_t x0 = std::max<int64_t>(static_cast<int64_t>(std::floor(acc[i][0]) - 1), 0);
    const int64_t y0 = std::max<int64_t>(static_cast<int64_t>(std::floor(acc[i][1]) - 1), 0);
    const int64_t x1 = std::min<int64_t>(static_cast<int64_t>(std::ceil(acc[i][2]) + 1), width);
    const int64_t y1 = std::min<int64_t>(static_cast<int64_t>(std::ceil(acc[i][3]) + 1), height);
    if (x1 <= x0 || y1 <= y0) continue;  // the box lies outside the image
    out[i].slice(0, y0, y1).slice(1, x0, x1).copy_(
        SampleWindow(m.slice(0, i, i + 1), b.slice(0, i, i + 1), x0, y0, x1, y1)[0]);
  }
  return out;
}

at::Tensor PasteMasks(const at::Tensor& masks, const at::Tensor& boxes, int64_t height,
                      int64_t width, const PasteMasksOptions& options) {
  return PasteMaskProbs(masks, boxes, height, width, options.skip_empty) >= options.threshold;
}

}  // namespace psaq::detect
