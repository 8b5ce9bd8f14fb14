#include "model/detect/nms.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <tuple>
#include <vector>

namespace psaq::detect {
namespace {

void CheckNmsInputs(const at::Tensor& boxes, const at::Tensor& scores) {
  TORCH_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, "Nms: boxes must be [N, 4], got ",
              boxes.sizes());
  TORCH_CHECK(scores.dim() == 1 && scores.size(0) == boxes.size(0),
              "Nms: scores must be [N] with N = ", boxes.size(0), ", got ", scores.sizes());
  TORCH_CHECK(
      boxes.scalar_type() == scores.scalar_type() && at::isFloatingType(boxes.scalar_type()),
      "Nms: boxes and scores must have the same floating dtype, got ", boxes.scalar_type(), " and ",
      scores.scalar_type());
  TORCH_CHECK(boxes.device() == scores.device(), "Nms: boxes and scores on different devices");
}

template <typename T>
int64_t GreedyNms(const at::Tensor& boxes, const at::Tensor& order, const at::Tensor& areas,
                  double iou_threshold, int64_t* keep) {
  const int64_t n = boxes.size(0);
  const at::Tensor b = boxes.contiguous();
  const T* box = b.data_ptr<T>();
  const T* area = areas.data_ptr<T>();
  const int64_t* ord = order.data_ptr<int64_t>();
  std::vector<uint8_t> suppressed(n, 0);
  int64_t kept = 0;
  for (int64_t oi = 0; oi < n; ++oi) {
    const int64_t i = ord[oi];
    if (suppressed[i]) continue;
    keep[kept++] = i;
    const T* bi = box + 4 * i;
    for (int64_t oj = oi + 1; oj < n; ++oj) {
      const int64_t j = ord[oj];
      if (suppressed[j]) continue;
      const T* bj = box + 4 * j;
      // IoU in T, as torchvision's kernel, compared with the double threshold.
      const T w = std::max(static_cast<T>(0), std::min(bi[2], bj[2]) - std::max(bi[0], bj[0]));
      const T h = std::max(static_cast<T>(0), std::min(bi[3], bj[3]) - std::max(bi[1], bj[1]));
      const T inter = w * h;
      const T iou = inter / (area[i] + area[j] - inter);
      if (iou > iou_threshold) suppressed[j] = 1;
    }
  }
  return kept;
}

}  // namespace

at::Tensor NmsAten(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
  CheckNmsInputs(boxes, scores);
  if (boxes.size(0) == 0) return at::empty({0}, boxes.options().dtype(at::kLong));
  const at::Tensor b = boxes.detach().cpu().contiguous();
  const at::Tensor s = scores.detach().cpu().contiguous();
  const at::Tensor areas =
      ((b.select(1, 2) - b.select(1, 0)) * (b.select(1, 3) - b.select(1, 1))).contiguous();
  // A stable descending sort, as torchvision 0.14's CPU kernel: equal scores are visited in
  // index order.
  const at::Tensor order =
      std::get<1>(s.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true)).contiguous();
  at::Tensor keep = at::empty({b.size(0)}, b.options().dtype(at::kLong));
  int64_t kept = 0;
  AT_DISPATCH_FLOATING_TYPES(b.scalar_type(), "NmsAten", [&] {
    kept = GreedyNms<scalar_t>(b, order, areas, iou_threshold, keep.data_ptr<int64_t>());
  });
  return keep.narrow(0, 0, kept).to(boxes.device());
}

at::Tensor Nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold,
               OpsBackend backend) {
  const bool torchvision =
      backend == OpsBackend::kTorchvision ||
      (backend == OpsBackend::kAuto && TorchvisionOpsSupport(boxes.device().type()));
  if (!torchvision) return NmsAten(boxes, scores, iou_threshold);
  CheckNmsInputs(boxes, scores);
  return TorchvisionNms(boxes, scores, iou_threshold);
}

at::Tensor BatchedNms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& idxs,
                      double iou_threshold, OpsBackend backend) {
  CheckNmsInputs(boxes, scores);
  TORCH_CHECK(idxs.dim() == 1 && idxs.size(0) == boxes.size(0),
              "BatchedNms: idxs must be [N] with N = ", boxes.size(0), ", got ", idxs.sizes());
  TORCH_CHECK(!at::isFloatingType(idxs.scalar_type()), "BatchedNms: idxs must be integer");
  if (boxes.size(0) == 0) return at::empty({0}, boxes.options().dtype(at::kLong));
  TORCH_CHECK(idxs.min().item<int64_t>() >= 0, "BatchedNms: idxs must be >= 0");
  // torchvision's _batched_nms_coordinate_trick: an offset larger than any coordinate per class
  // puts the classes' boxes apart, so they never overlap.
  const at::Tensor b = boxes.detach();
  const at::Tensor offsets = idxs.to(b.scalar_type()) * (b.max() + 1);
  return Nms(b + offsets.unsqueeze(1), scores.detach(), iou_threshold, backend);
}

}  // namespace psaq::detect
