#include "model/detect/rpn_targets.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <array>

#include "model/detect/box_coder.h"

namespace psaq::detect {

double RpnTargets::avg_factor() const {
  return static_cast<double>(std::max<int64_t>(num_pos, 1) + std::max<int64_t>(num_neg, 1));
}

at::Tensor AnchorValidFlags(const std::vector<std::pair<int64_t, int64_t>>& feat_sizes,
                            const std::vector<int64_t>& strides, int64_t num_base_anchors,
                            int64_t height, int64_t width) {
  TORCH_CHECK(feat_sizes.size() <= strides.size(), "AnchorValidFlags: ", feat_sizes.size(),
              " levels but ", strides.size(), " strides");
  std::vector<at::Tensor> levels;
  for (size_t l = 0; l < feat_sizes.size(); ++l) {
    const auto [fh, fw] = feat_sizes[l];
    const int64_t s = strides[l];
    const int64_t vh = std::min((height + s - 1) / s, fh), vw = std::min((width + s - 1) / s, fw);
    const at::Tensor ys = at::arange(fh, at::kLong).lt(vh).view({fh, 1});
    const at::Tensor xs = at::arange(fw, at::kLong).lt(vw).view({1, fw});
    levels.push_back(
        at::logical_and(ys, xs).view({fh, fw, 1}).expand({fh, fw, num_base_anchors}).reshape(-1));
  }
  return at::cat(levels);
}

RpnTargets ComputeRpnTargets(const at::Tensor& anchors, const at::Tensor& valid,
                             const at::Tensor& gt_boxes, const std::vector<double>& target_stds,
                             const MaxIoUAssignerOptions& assigner,
                             const RandomSamplerOptions& sampler, at::Generator generator) {
  TORCH_CHECK(anchors.dim() == 2 && anchors.size(1) == 4 && valid.dim() == 1 &&
                  valid.size(0) == anchors.size(0) && gt_boxes.dim() == 2 && gt_boxes.size(1) == 4,
              "ComputeRpnTargets: expected anchors [N, 4], valid [N], gt_boxes [G, 4], got ",
              anchors.sizes(), ", ", valid.sizes(), ", ", gt_boxes.sizes());
  TORCH_CHECK(target_stds.size() == 4, "ComputeRpnTargets: 4 target stds expected");
  const int64_t n = anchors.size(0);
  const at::Tensor inside = valid.nonzero().squeeze(1);
  const at::Tensor used = anchors.index_select(0, inside);
  const AssignResult assign = MaxIoUAssign(used, gt_boxes, at::Tensor(), assigner);
  const SamplingResult sample = RandomSample(assign, sampler, generator);
  const at::Tensor pos = inside.index_select(0, sample.pos_inds);
  const at::Tensor neg = inside.index_select(0, sample.neg_inds);

  RpnTargets t;
  const auto opts = anchors.options();
  t.labels = at::zeros({n}, opts);
  t.label_weights = at::zeros({n}, opts);
  t.delta_targets = at::zeros({n, 4}, opts);
  t.delta_weights = at::zeros({n}, opts);
  t.num_pos = pos.size(0);
  t.num_neg = neg.size(0);
  t.labels.index_fill_(0, pos, 1.0);
  t.label_weights.index_fill_(0, pos, 1.0);
  t.label_weights.index_fill_(0, neg, 1.0);
  if (t.num_pos > 0) {
    // gt_inds are 1-based for assigned boxes.
    const at::Tensor gt_of_pos = assign.gt_inds.index_select(0, sample.pos_inds) - 1;
    DeltaXYWHBBoxCoderOptions coder;
    coder.target_stds = {target_stds[0], target_stds[1], target_stds[2], target_stds[3]};
    const at::Tensor deltas = DeltaXYWHBBoxCoder(coder).Encode(anchors.index_select(0, pos),
                                                               gt_boxes.index_select(0, gt_of_pos));
    t.delta_targets.index_copy_(0, pos, deltas);
    t.delta_weights.index_fill_(0, pos, 1.0);
  }
  return t;
}

}  // namespace psaq::detect
