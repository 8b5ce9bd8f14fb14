#include "model/detect/roi_targets.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include "model/detect/box_coder.h"

namespace psaq::detect {

RoiTargets ComputeRoiTargets(const at::Tensor& proposals, const at::Tensor& gt_boxes,
                             const at::Tensor& gt_labels, int64_t num_classes,
                             const std::vector<double>& target_stds,
                             const MaxIoUAssignerOptions& assigner,
                             const RandomSamplerOptions& sampler, at::Generator generator) {
  TORCH_CHECK(proposals.dim() == 2 && proposals.size(1) == 4 && gt_boxes.dim() == 2 &&
                  gt_boxes.size(1) == 4 && gt_labels.dim() == 1 &&
                  gt_labels.size(0) == gt_boxes.size(0) && gt_labels.scalar_type() == at::kLong,
              "ComputeRoiTargets: expected proposals [P, 4], gt_boxes [G, 4], gt_labels int64 [G], "
              "got ",
              proposals.sizes(), ", ", gt_boxes.sizes(), ", ", gt_labels.sizes());
  TORCH_CHECK(gt_labels.numel() == 0 ||
                  (gt_labels.min().item<int64_t>() >= 0 &&
                   gt_labels.max().item<int64_t>() < num_classes),
              "ComputeRoiTargets: gt labels must be in [0, ", num_classes, ")");
  TORCH_CHECK(target_stds.size() == 4, "ComputeRoiTargets: 4 target stds expected");
  const at::Tensor candidates = at::cat({gt_boxes, proposals.to(gt_boxes.scalar_type())});
  const AssignResult assign = AddGtAsProposals(
      MaxIoUAssign(proposals.to(gt_boxes.scalar_type()), gt_boxes, gt_labels, assigner),
      gt_labels);
  const SamplingResult sample = RandomSample(assign, sampler, generator);

  RoiTargets t;
  t.num_pos = sample.pos_inds.size(0);
  const at::Tensor pos_boxes = candidates.index_select(0, sample.pos_inds);
  const at::Tensor neg_boxes = candidates.index_select(0, sample.neg_inds);
  t.boxes = at::cat({pos_boxes, neg_boxes});
  t.pos_gt_inds = assign.gt_inds.index_select(0, sample.pos_inds) - 1;
  t.labels = at::cat({assign.labels.index_select(0, sample.pos_inds),
                      at::full({neg_boxes.size(0)}, num_classes, gt_labels.options())});
  t.delta_targets = at::zeros({t.boxes.size(0), 4}, candidates.options());
  if (t.num_pos > 0) {
    DeltaXYWHBBoxCoderOptions coder;
    coder.target_stds = {target_stds[0], target_stds[1], target_stds[2], target_stds[3]};
    t.delta_targets.slice(0, 0, t.num_pos)
        .copy_(DeltaXYWHBBoxCoder(coder).Encode(pos_boxes, gt_boxes.index_select(0, t.pos_gt_inds)));
  }
  return t;
}

}  // namespace psaq::detect
