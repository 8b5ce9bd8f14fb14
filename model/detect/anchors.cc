#include "model/detect/anchors.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <utility>

namespace psaq::detect {
namespace {

// mmdet's gen_single_level_base_anchors with scale_major=True, in float32 throughout (mmdet's
// scales and ratios are torch.Tensor, i.e. float32; base size and center are Python floats).
at::Tensor BaseAnchors(double base_size, const std::vector<double>& scales,
                       const std::vector<double>& ratios, double center_offset) {
  const at::Tensor scale =
      at::tensor(scales, at::TensorOptions().dtype(at::kDouble)).to(at::kFloat);
  const at::Tensor ratio =
      at::tensor(ratios, at::TensorOptions().dtype(at::kDouble)).to(at::kFloat);
  const at::Tensor h_ratio = ratio.sqrt();
  const at::Tensor w_ratio = 1.0 / h_ratio;
  const at::Tensor ws = (base_size * w_ratio.unsqueeze(1) * scale.unsqueeze(0)).reshape({-1});
  const at::Tensor hs = (base_size * h_ratio.unsqueeze(1) * scale.unsqueeze(0)).reshape({-1});
  const double cx = center_offset * base_size, cy = center_offset * base_size;
  return at::stack({cx - 0.5 * ws, cy - 0.5 * hs, cx + 0.5 * ws, cy + 0.5 * hs}, -1);
}

}  // namespace

AnchorGenerator::AnchorGenerator(AnchorGeneratorOptions options) : options_(std::move(options)) {
  TORCH_CHECK(!options_.strides.empty(), "AnchorGenerator: strides must not be empty");
  TORCH_CHECK(!options_.scales.empty() && !options_.ratios.empty(),
              "AnchorGenerator: scales and ratios must not be empty");
  for (int64_t s : options_.strides) TORCH_CHECK(s > 0, "AnchorGenerator: stride ", s, " <= 0");
  for (double s : options_.scales) TORCH_CHECK(s > 0, "AnchorGenerator: scale ", s, " <= 0");
  for (double r : options_.ratios) TORCH_CHECK(r > 0, "AnchorGenerator: ratio ", r, " <= 0");
  TORCH_CHECK(options_.base_sizes.empty() || options_.base_sizes.size() == options_.strides.size(),
              "AnchorGenerator: ", options_.base_sizes.size(), " base_sizes for ",
              options_.strides.size(), " strides");
  for (size_t level = 0; level < options_.strides.size(); ++level) {
    const double base = options_.base_sizes.empty() ? static_cast<double>(options_.strides[level])
                                                    : options_.base_sizes[level];
    TORCH_CHECK(base > 0, "AnchorGenerator: base size ", base, " <= 0");
    base_anchors_.push_back(
        BaseAnchors(base, options_.scales, options_.ratios, options_.center_offset));
  }
}

const at::Tensor& AnchorGenerator::base_anchors(int64_t level) const {
  TORCH_CHECK(level >= 0 && level < num_levels(), "AnchorGenerator: level ", level, " outside [0, ",
              num_levels(), ")");
  return base_anchors_[level];
}

at::Tensor AnchorGenerator::GridAnchors(int64_t level, int64_t feat_h, int64_t feat_w,
                                        c10::Device device) const {
  const at::Tensor& base = base_anchors(level);
  TORCH_CHECK(feat_h >= 0 && feat_w >= 0, "AnchorGenerator: negative feature size ", feat_h, " x ",
              feat_w);
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(device);
  const double stride = static_cast<double>(options_.strides[level]);
  // mmdet's _meshgrid(row_major=True): x varies fastest.
  const at::Tensor shift_x = at::arange(feat_w, f32) * stride;
  const at::Tensor shift_y = at::arange(feat_h, f32) * stride;
  const at::Tensor xx = shift_x.repeat({feat_h});
  const at::Tensor yy = shift_y.view({-1, 1}).repeat({1, feat_w}).view({-1});
  const at::Tensor shifts = at::stack({xx, yy, xx, yy}, -1);  // [Hf * Wf, 4]
  return (base.to(device).unsqueeze(0) + shifts.unsqueeze(1)).view({-1, 4});
}

std::vector<at::Tensor> AnchorGenerator::GridAnchors(
    const std::vector<std::pair<int64_t, int64_t>>& feat_sizes, c10::Device device) const {
  TORCH_CHECK(static_cast<int64_t>(feat_sizes.size()) == num_levels(),
              "AnchorGenerator: ", feat_sizes.size(), " feature sizes for ", num_levels(),
              " levels");
  std::vector<at::Tensor> anchors;
  for (int64_t level = 0; level < num_levels(); ++level) {
    anchors.push_back(
        GridAnchors(level, feat_sizes[level].first, feat_sizes[level].second, device));
  }
  return anchors;
}

}  // namespace psaq::detect
