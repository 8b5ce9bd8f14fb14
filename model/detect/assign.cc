#include "model/detect/assign.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <tuple>

#include "model/detect/box_ops.h"

namespace psaq::detect {
namespace {

void CheckThreshold(double value, const char* name) {
  TORCH_CHECK(value >= 0.0 && value <= 1.0, "MaxIoUAssign: ", name, " must be in [0, 1], got ",
              value);
}

// Indices of `mask` (ascending), at most `num` of them, a random subset when there are more
// (mmdet's random_choice: the first `num` of a random permutation), sorted as mmdet's unique().
at::Tensor Choose(const at::Tensor& mask, int64_t num, at::Generator& generator) {
  const at::Tensor gallery = mask.nonzero().view({-1});
  if (gallery.numel() <= num) return gallery;
  const at::Tensor perm =
      at::randperm(gallery.numel(), generator, at::TensorOptions().dtype(at::kLong))
          .slice(0, 0, num)
          .to(gallery.device());
  return std::get<0>(at::sort(gallery.index_select(0, perm)));
}

}  // namespace

MaxIoUAssignerOptions RpnAssignerOptions() { return {0.7, 0.3, 0.3, true, true}; }

MaxIoUAssignerOptions RcnnAssignerOptions() { return {0.5, 0.5, 0.5, true, true}; }

AssignResult MaxIoUAssign(const at::Tensor& boxes, const at::Tensor& gt_boxes,
                          const at::Tensor& gt_labels, const MaxIoUAssignerOptions& options) {
  CheckThreshold(options.pos_iou_thr, "pos_iou_thr");
  CheckThreshold(options.neg_iou_thr, "neg_iou_thr");
  CheckThreshold(options.min_pos_iou, "min_pos_iou");
  if (gt_labels.defined()) {
    TORCH_CHECK(gt_labels.dim() == 1 && gt_labels.size(0) == gt_boxes.size(0) &&
                    gt_labels.scalar_type() == at::kLong,
                "MaxIoUAssign: gt_labels must be int64 [G] with G = ", gt_boxes.size(0));
  }
  const at::Tensor overlaps = BoxIou(gt_boxes, boxes);  // [G, N]; checks shapes and dtypes
  const int64_t num_gts = overlaps.size(0), num_boxes = overlaps.size(1);
  const auto long_options = boxes.options().dtype(at::kLong);
  AssignResult result;
  result.num_gts = num_gts;
  if (num_gts == 0 || num_boxes == 0) {
    result.gt_inds = at::full({num_boxes}, num_gts == 0 ? 0 : -1, long_options);
    result.max_overlaps = at::zeros({num_boxes}, boxes.options());
    if (gt_labels.defined()) result.labels = at::full({num_boxes}, -1, long_options);
    return result;
  }
  at::Tensor max_overlaps, argmax_overlaps, gt_max_overlaps;
  std::tie(max_overlaps, argmax_overlaps) = overlaps.max(0);
  gt_max_overlaps = std::get<0>(overlaps.max(1));
  at::Tensor gt_inds = at::full({num_boxes}, -1, long_options);
  gt_inds.masked_fill_((max_overlaps >= 0) & (max_overlaps < options.neg_iou_thr), 0);
  const at::Tensor positive = max_overlaps >= options.pos_iou_thr;
  gt_inds = at::where(positive, argmax_overlaps + 1, gt_inds);
  if (options.match_low_quality) {
    const at::Tensor gt_max = gt_max_overlaps.cpu();
    for (int64_t i = 0; i < num_gts; ++i) {
      if (gt_max[i].item<double>() < options.min_pos_iou) continue;
      if (options.gt_max_assign_all) {
        gt_inds.masked_fill_(overlaps[i] == gt_max_overlaps[i], i + 1);
      } else {
        gt_inds[overlaps[i].argmax().item<int64_t>()] = i + 1;
      }
    }
  }
  result.gt_inds = gt_inds;
  result.max_overlaps = max_overlaps;
  if (gt_labels.defined()) {
    const at::Tensor assigned = gt_inds > 0;
    result.labels = at::where(
        assigned, gt_labels.to(gt_inds.device()).index_select(0, (gt_inds - 1).clamp_min(0)),
        at::full_like(gt_inds, -1));
  }
  return result;
}

AssignResult AddGtAsProposals(const AssignResult& result, const at::Tensor& gt_labels) {
  TORCH_CHECK(gt_labels.dim() == 1 && gt_labels.scalar_type() == at::kLong,
              "AddGtAsProposals: gt_labels must be int64 [G]");
  const int64_t num = gt_labels.size(0);
  TORCH_CHECK(num == result.num_gts, "AddGtAsProposals: ", num, " labels for ", result.num_gts,
              " ground-truth boxes");
  if (num == 0) return result;
  TORCH_CHECK(result.labels.defined(), "AddGtAsProposals: the assignment has no labels");
  AssignResult out = result;
  const auto device = result.gt_inds.device();
  out.gt_inds = at::cat({at::arange(1, num + 1, result.gt_inds.options()), result.gt_inds});
  out.max_overlaps = at::cat({at::ones({num}, result.max_overlaps.options()), result.max_overlaps});
  out.labels = at::cat({gt_labels.to(device), result.labels});
  return out;
}

SamplingResult RandomSample(const AssignResult& assign, const RandomSamplerOptions& options,
                            at::Generator generator) {
  TORCH_CHECK(options.num >= 0, "RandomSample: num must be >= 0, got ", options.num);
  TORCH_CHECK(options.pos_fraction >= 0.0 && options.pos_fraction <= 1.0,
              "RandomSample: pos_fraction must be in [0, 1], got ", options.pos_fraction);
  TORCH_CHECK(assign.gt_inds.defined() && assign.gt_inds.dim() == 1,
              "RandomSample: the assignment has no gt_inds");
  const int64_t expected_pos = static_cast<int64_t>(options.num * options.pos_fraction);
  SamplingResult result;
  result.pos_inds = Choose(assign.gt_inds > 0, expected_pos, generator);
  int64_t expected_neg = options.num - result.pos_inds.numel();
  if (options.neg_pos_ub >= 0) {
    const int64_t bound =
        static_cast<int64_t>(options.neg_pos_ub * std::max<int64_t>(1, result.pos_inds.numel()));
    expected_neg = std::min(expected_neg, bound);
  }
  result.neg_inds = Choose(assign.gt_inds == 0, expected_neg, generator);
  return result;
}

}  // namespace psaq::detect
