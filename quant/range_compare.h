// The range diagnostic of `psaq inspect --compare`: how well a calibrated model's activation
// ranges (from data-free samples, noise, real images...) fit the activations that real images
// produce.
//
// For every enabled activation quantization point with a range, over real images run through
// the FLOAT model (so each point sees exactly the float activations, nothing upstream is
// quantized, and a point's numbers depend on its own range only):
//   calibrated_min/max  the range the model was calibrated to;
//   real_min/max        the min and max of the real images' activations there;
//   clipped             how many real activations lie outside [calibrated_min, calibrated_max]
//                       (below or above), out of `count`;
//   sqnr_db             10 log10(sum x^2 / sum (x - Q(x))^2) over all real activations x of the
//                       point, Q the point's own fake quantizer (+inf when Q(x) = x everywhere).
// A range that is too narrow shows as clipped activations and a low SQNR, one that is too wide
// as a low SQNR with nothing clipped. "Damage" is the SQNR: rows are sorted lowest first.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "quant/activation_quantizer.h"
#include "quant/quantized_model.h"

namespace psaq::quant {

struct PointRangeComparison {
  std::string name;  // the activation tap
  double calibrated_min = 0;
  double calibrated_max = 0;
  double real_min = 0;
  double real_max = 0;
  int64_t count = 0;    // real activations seen
  int64_t clipped = 0;  // of them outside the calibrated range
  double signal = 0;    // sum x^2 (float64)
  double noise = 0;     // sum (x - Q(x))^2 (float64)

  double clipped_fraction() const;  // clipped / count (0 for count 0)
  double sqnr_db() const;           // 10 log10(signal / noise); +inf for noise 0
};

// Folds the activations `x` of one batch at a point quantized by `quantizer` into `point`
// (whose calibrated range is taken from the quantizer on the first call). Outside autograd.
// REQUIRES (TORCH_CHECK): quantizer enabled with a range, x floating point and finite.
void AccumulatePoint(PointRangeComparison& point, const ActivationQuantizer& quantizer,
                     const at::Tensor& x);

// Runs `batches` ([B, in_chans, H, W] real images on the model's device) through the float
// model and compares every enabled, calibrated activation point (above). Sorted by SQNR, lowest
// first (NaN first, ties in forward order). Leaves the model's mode as it was.
// REQUIRES (TORCH_CHECK): at least one batch; the model calibrated.
std::vector<PointRangeComparison> CompareRanges(QuantizedModel& model,
                                                const std::vector<at::Tensor>& batches);

// The table: rank, point, calibrated range, real range, real clipped %, SQNR dB; the
// `max_rows` most damaged rows (all for max_rows <= 0) and a line counting the others.
std::string FormatRangeComparison(const std::vector<PointRangeComparison>& points, int max_rows);

// Every row as {"point", "calibrated_min", "calibrated_max", "real_min", "real_max", "count",
// "clipped", "clipped_fraction", "sqnr_db"} (sqnr_db null when infinite), in table order.
nlohmann::json RangeComparisonJson(const std::vector<PointRangeComparison>& points);

}  // namespace psaq::quant
