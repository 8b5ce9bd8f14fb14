#include "gen/lr_schedule.h"

#include <c10/util/Exception.h>

#include <cmath>

namespace psaq::gen {
namespace {

constexpr double kPi = 3.14159265358979323846;

void CheckOptions(const WarmupCosineOptions& o) {
  TORCH_CHECK(o.base_lr >= 0 && std::isfinite(o.base_lr),
              "WarmupCosineOptions.base_lr must be finite and >= 0, got ", o.base_lr);
  TORCH_CHECK(o.iterations >= 1, "WarmupCosineOptions.iterations must be >= 1, got ", o.iterations);
  TORCH_CHECK(o.warmup >= 0 && o.warmup <= o.iterations,
              "WarmupCosineOptions.warmup must be in [0, iterations=", o.iterations, "], got ",
              o.warmup);
}

}  // namespace

double WarmupCosineLr(const WarmupCosineOptions& options, int64_t it) {
  CheckOptions(options);
  TORCH_CHECK(it >= 0 && it < options.iterations, "WarmupCosineLr: step ", it,
              " outside the epoch [0, ", options.iterations, ")");
  if (it < options.warmup) {
    return options.base_lr * static_cast<double>(it + 1) / static_cast<double>(options.warmup);
  }
  // it >= warmup implies iterations - warmup >= 1 here.
  const double e = static_cast<double>(it - options.warmup);
  const double es = static_cast<double>(options.iterations - options.warmup);
  return 0.5 * (1 + std::cos(kPi * e / es)) * options.base_lr;
}

double WarmupCosineLrAtStep(const WarmupCosineOptions& options, int64_t step) {
  CheckOptions(options);
  TORCH_CHECK(step >= 0, "WarmupCosineLrAtStep: step must be >= 0, got ", step);
  return WarmupCosineLr(options, step % options.iterations);
}

}  // namespace psaq::gen
