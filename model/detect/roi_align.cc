#include "model/detect/roi_align.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <vector>

namespace psaq::detect {
namespace {

// Bilinear neighbours and weights of sample coordinates along one axis of length `size`, with
// torchvision's border rules (roi_align_kernel.cpp, pre_calc_for_bilinear_interpolate): samples
// outside [-1, size] (or masked out) get zero weights; the rest are clamped at 0 and snapped onto
// the last row/column at or beyond it. Because the rules act on each axis separately, the 2-D
// weight of a sample is the product of its two axis weights.
struct AxisSamples {
  at::Tensor low, high;      // int64 neighbour indices
  at::Tensor low_w, high_w;  // weights, zero for samples that contribute nothing
};

AxisSamples Neighbours(const at::Tensor& coord, const at::Tensor& in_grid, int64_t size) {
  const at::Tensor valid = in_grid & (coord >= -1.0) & (coord <= static_cast<double>(size));
  at::Tensor c = coord.clamp_min(0.0);
  at::Tensor low = c.floor().to(at::kLong);  // c >= 0: floor is the kernel's (int) cast
  const at::Tensor at_edge = low >= size - 1;
  low = low.clamp_max(size - 1);
  const at::Tensor high = at::where(at_edge, low, low + 1);
  c = at::where(at_edge, low.to(coord.scalar_type()), c);
  const at::Tensor l = c - low.to(coord.scalar_type());
  const at::Tensor zero = at::zeros_like(l);
  return {low, high, at::where(valid, 1.0 - l, zero), at::where(valid, l, zero)};
}

// Sample coordinates [k, P, G] along one axis: start + p * bin + (i + 0.5) * bin / grid, in the
// kernel's order of operations; in_grid masks the samples i >= grid of RoIs with a smaller
// adaptive grid than the chunk's largest.
at::Tensor SampleCoords(const at::Tensor& start, const at::Tensor& bin, const at::Tensor& grid,
                        int64_t pooled, int64_t max_grid, at::Tensor* in_grid) {
  const auto opts = start.options();
  const at::Tensor p = at::arange(pooled, opts).view({1, -1, 1});
  const at::Tensor i = at::arange(max_grid, opts).view({1, 1, -1});
  const at::Tensor b = bin.view({-1, 1, 1});
  const at::Tensor g = grid.view({-1, 1, 1});
  *in_grid = i < g;
  return (start.view({-1, 1, 1}) + p * b) + (i + 0.5) * b / g.clamp_min(1);
}

// Finite coordinates (a NaN or infinite RoI would make the sample grid meaningless, and its size
// unbounded with adaptive sampling) and batch indices in [0, n). REQUIRES: rois [K, 5].
void CheckRoiValues(const at::Tensor& rois, int64_t n) {
  if (rois.size(0) == 0) return;
  TORCH_CHECK(rois.isfinite().all().item<bool>(), "RoiAlign: rois must be finite");
  const at::Tensor batch = rois.select(1, 0);
  TORCH_CHECK(batch.min().item<double>() >= 0 && batch.max().item<double>() < n,
              "RoiAlign: rois batch index outside [0, ", n, ")");
}

}  // namespace

at::Tensor RoiAlignAten(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                        int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio,
                        bool aligned, int64_t max_chunk_elements) {
  TORCH_CHECK(input.dim() == 4, "RoiAlign: input must be [N, C, H, W], got ", input.sizes());
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5,
              "RoiAlign: rois must be [K, 5] (batch index, x1, y1, x2, y2), got ", rois.sizes());
  TORCH_CHECK(input.scalar_type() == at::kFloat || input.scalar_type() == at::kDouble,
              "RoiAlign: input must be float32 or float64, got ", input.scalar_type());
  TORCH_CHECK(rois.scalar_type() == input.scalar_type() && rois.device() == input.device(),
              "RoiAlign: rois must have the input's dtype and device");
  TORCH_CHECK(pooled_height > 0 && pooled_width > 0, "RoiAlign: pooled sizes must be >= 1, got ",
              pooled_height, " x ", pooled_width);
  const int64_t n = input.size(0), channels = input.size(1);
  const int64_t height = input.size(2), width = input.size(3);
  const int64_t num_rois = rois.size(0);
  if (num_rois == 0) return at::zeros({0, channels, pooled_height, pooled_width}, input.options());

  const at::Tensor r = rois.detach();  // no gradient w.r.t. the boxes, as torchvision
  CheckRoiValues(r, n);
  const at::Tensor batch = r.select(1, 0).to(at::kLong);
  const double offset = aligned ? 0.5 : 0.0;
  const at::Tensor x1 = r.select(1, 1) * spatial_scale - offset;
  const at::Tensor y1 = r.select(1, 2) * spatial_scale - offset;
  at::Tensor roi_w = (r.select(1, 3) * spatial_scale - offset) - x1;
  at::Tensor roi_h = (r.select(1, 4) * spatial_scale - offset) - y1;
  if (!aligned) {  // legacy Detectron: RoIs at least 1 x 1
    roi_w = roi_w.clamp_min(1.0);
    roi_h = roi_h.clamp_min(1.0);
  }
  const at::Tensor bin_h = roi_h / static_cast<double>(pooled_height);
  const at::Tensor bin_w = roi_w / static_cast<double>(pooled_width);
  at::Tensor grid_h, grid_w;
  if (sampling_ratio > 0) {
    grid_h = at::full({num_rois}, sampling_ratio, batch.options());
    grid_w = grid_h;
  } else {
    grid_h = bin_h.ceil().clamp_min(0).to(at::kLong);
    grid_w = bin_w.ceil().clamp_min(0).to(at::kLong);
  }
  const at::Tensor count = (grid_h * grid_w).clamp_min(1).to(input.scalar_type());
  const at::Tensor grid_h_cpu = grid_h.cpu().contiguous();
  const at::Tensor grid_w_cpu = grid_w.cpu().contiguous();
  const int64_t* gh = grid_h_cpu.data_ptr<int64_t>();
  const int64_t* gw = grid_w_cpu.data_ptr<int64_t>();

  // [N*H*W, C]: one row per pixel, so a flat pixel index gathers all channels at once.
  const at::Tensor table = input.permute({0, 2, 3, 1}).reshape({n * height * width, channels});
  const int64_t budget = std::max<int64_t>(max_chunk_elements, 1);
  std::vector<at::Tensor> outputs;
  int64_t begin = 0;
  while (begin < num_rois) {
    // Grow the chunk of RoIs while its padded sample grid (times C) stays within the budget.
    int64_t end = begin, max_gh = 1, max_gw = 1;
    while (end < num_rois) {
      const int64_t next_gh = std::max(max_gh, gh[end]), next_gw = std::max(max_gw, gw[end]);
      const int64_t samples = (end - begin + 1) * pooled_height * next_gh * pooled_width * next_gw;
      if (end > begin && samples * channels > budget) break;
      max_gh = next_gh;
      max_gw = next_gw;
      ++end;
    }
    const int64_t k = end - begin;
    at::Tensor in_grid_y, in_grid_x;
    const at::Tensor ys = SampleCoords(y1.slice(0, begin, end), bin_h.slice(0, begin, end),
                                       grid_h.slice(0, begin, end), pooled_height, max_gh,
                                       &in_grid_y);  // [k, PH, Gh]
    const at::Tensor xs = SampleCoords(x1.slice(0, begin, end), bin_w.slice(0, begin, end),
                                       grid_w.slice(0, begin, end), pooled_width, max_gw,
                                       &in_grid_x);  // [k, PW, Gw]
    const AxisSamples sy = Neighbours(ys, in_grid_y, height);
    const AxisSamples sx = Neighbours(xs, in_grid_x, width);
    // Broadcast to [k, PH, Gh, PW, Gw].
    const at::Tensor base = (batch.slice(0, begin, end) * (height * width)).view({k, 1, 1, 1, 1});
    auto row = [&](const at::Tensor& t) { return t.view({k, pooled_height, max_gh, 1, 1}); };
    auto col = [&](const at::Tensor& t) { return t.view({k, 1, 1, pooled_width, max_gw}); };
    struct Corner {
      at::Tensor index, weight;
    };
    auto corner = [&](const at::Tensor& yi, const at::Tensor& yw, const at::Tensor& xi,
                      const at::Tensor& xw) {
      return Corner{(base + row(yi) * width + col(xi)).reshape({-1}),
                    (row(yw) * col(xw)).unsqueeze(-1)};
    };
    const Corner corners[4] = {corner(sy.low, sy.low_w, sx.low, sx.low_w),
                               corner(sy.low, sy.low_w, sx.high, sx.high_w),
                               corner(sy.high, sy.high_w, sx.low, sx.low_w),
                               corner(sy.high, sy.high_w, sx.high, sx.high_w)};
    // A single RoI with a large adaptive grid can exceed the budget alone: split its channels.
    const int64_t samples = k * pooled_height * max_gh * pooled_width * max_gw;
    const int64_t channel_step = std::clamp<int64_t>(budget / samples, 1, channels);
    const at::Tensor divisor = count.slice(0, begin, end).view({k, 1, 1, 1});
    std::vector<at::Tensor> channel_parts;
    for (int64_t c0 = 0; c0 < channels; c0 += channel_step) {
      const int64_t c1 = std::min(channels, c0 + channel_step);
      const at::Tensor part = table.slice(1, c0, c1);
      at::Tensor sum;
      for (const Corner& c : corners) {
        const at::Tensor values =
            part.index_select(0, c.index)
                .view({k, pooled_height, max_gh, pooled_width, max_gw, c1 - c0});
        sum = sum.defined() ? sum + values * c.weight : values * c.weight;
      }
      channel_parts.push_back(sum.sum({2, 4}) / divisor);  // [k, PH, PW, c]
    }
    const at::Tensor pooled =
        channel_parts.size() == 1 ? channel_parts[0] : at::cat(channel_parts, 3);
    outputs.push_back(pooled.permute({0, 3, 1, 2}));  // [k, C, PH, PW]
    begin = end;
  }
  return outputs.size() == 1 ? outputs[0].contiguous() : at::cat(outputs, 0);
}

at::Tensor RoiAlign(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                    int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio,
                    bool aligned, OpsBackend backend) {
  const bool torchvision =
      backend == OpsBackend::kTorchvision ||
      (backend == OpsBackend::kAuto && TorchvisionOpsSupport(input.device().type()));
  if (!torchvision) {
    return RoiAlignAten(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio,
                        aligned);
  }
  // torchvision checks shapes itself but not the pooled sizes or the batch index (an index out
  // of range reads outside the input), so check what it does not.
  TORCH_CHECK(pooled_height > 0 && pooled_width > 0, "RoiAlign: pooled sizes must be >= 1, got ",
              pooled_height, " x ", pooled_width);
  TORCH_CHECK(input.dim() == 4, "RoiAlign: input must be [N, C, H, W], got ", input.sizes());
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5,
              "RoiAlign: rois must be [K, 5] (batch index, x1, y1, x2, y2), got ", rois.sizes());
  CheckRoiValues(rois.detach(), input.size(0));
  return TorchvisionRoiAlign(input, rois, spatial_scale, pooled_height, pooled_width,
                             sampling_ratio, aligned);
}

}  // namespace psaq::detect
