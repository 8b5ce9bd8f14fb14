#include "launch/train/train_schedule.h"

#include <c10/util/Exception.h>

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace psaq::train {
namespace {

constexpr double kPi = 3.14159265358979323846;

// b + (a - b) * (1 + cos(pi * p)) / 2: a at p = 0, b at p = 1.
double CosAnneal(double a, double b, double p) {
  return b + (a - b) * 0.5 * (1.0 + std::cos(kPi * p));
}

[[noreturn]] void Invalid(const std::string& field, double value, const std::string& rule) {
  std::ostringstream out;
  out << "learning-rate schedule: " << field << " = " << value << " " << rule;
  throw std::invalid_argument(out.str());
}

}  // namespace

std::string LrShapeName(LrShape shape) {
  return shape == LrShape::kWarmupCosine ? "cosine" : "one_cycle";
}

LrShape ParseLrShape(const std::string& name) {
  if (name == "cosine") return LrShape::kWarmupCosine;
  if (name == "one_cycle") return LrShape::kOneCycle;
  throw std::invalid_argument("unknown learning-rate schedule '" + name +
                              "' (expected cosine or one_cycle)");
}

void ValidateTrainLr(const TrainLrOptions& o) {
  if (!(o.peak_lr > 0)) Invalid("peak_lr", o.peak_lr, "must be > 0");
  if (o.total_steps < 1) Invalid("total_steps", o.total_steps, "must be >= 1");
  if (o.shape == LrShape::kWarmupCosine) {
    if (o.warmup_steps < 0 || o.warmup_steps >= o.total_steps) {
      Invalid("warmup_steps", o.warmup_steps,
              "must be in [0, total_steps = " + std::to_string(o.total_steps) + ")");
    }
    if (!(o.final_lr >= 0 && o.final_lr <= o.peak_lr)) {
      Invalid("final_lr", o.final_lr, "must be in [0, peak_lr]");
    }
    return;
  }
  if (!(o.pct_start > 0 && o.pct_start < 1)) Invalid("pct_start", o.pct_start, "must be in (0, 1)");
  if (!(o.pct_start * static_cast<double>(o.total_steps) > 1)) {
    Invalid("pct_start", o.pct_start,
            "leaves no rising phase: pct_start * total_steps must be > 1 (total_steps = " +
                std::to_string(o.total_steps) + ")");
  }
  if (!(o.div_factor >= 1)) Invalid("div_factor", o.div_factor, "must be >= 1");
  if (!(o.final_div_factor >= 1)) Invalid("final_div_factor", o.final_div_factor, "must be >= 1");
}

double TrainLrAtStep(const TrainLrOptions& o, int64_t step) {
  ValidateTrainLr(o);
  TORCH_CHECK(step >= 0 && step < o.total_steps, "learning-rate schedule: step ", step,
              " is outside [0, ", o.total_steps, ")");
  const auto s = static_cast<double>(step);
  if (o.shape == LrShape::kWarmupCosine) {
    if (step < o.warmup_steps) return o.peak_lr * (s + 1) / static_cast<double>(o.warmup_steps);
    const double t = (s - static_cast<double>(o.warmup_steps)) /
                     static_cast<double>(o.total_steps - o.warmup_steps);
    return CosAnneal(o.peak_lr, o.final_lr, t);
  }
  const double initial = o.peak_lr / o.div_factor;
  const double floor = initial / o.final_div_factor;
  const double rise = o.pct_start * static_cast<double>(o.total_steps) - 1;
  if (s <= rise) return CosAnneal(initial, o.peak_lr, s / rise);
  return CosAnneal(o.peak_lr, floor, (s - rise) / (static_cast<double>(o.total_steps) - 1 - rise));
}

}  // namespace psaq::train
