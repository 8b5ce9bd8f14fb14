#include "gen/v2_options.h"

#include <c10/util/Exception.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "gen/adam.h"

namespace psaq::gen {

std::string StudentUpdateName(StudentUpdate update) {
  return update == StudentUpdate::kLatentWeights ? "latent_weights" : "recalibrate_only";
}

StudentUpdate ParseStudentUpdate(const std::string& name) {
  if (name == "latent_weights" || name == "A") return StudentUpdate::kLatentWeights;
  if (name == "recalibrate_only" || name == "B") return StudentUpdate::kRecalibrateOnly;
  throw std::invalid_argument("unknown student update '" + name +
                              "' (expected latent_weights (A) or recalibrate_only (B))");
}

std::string ImageScheduleName(ImageSchedule schedule) {
  return schedule == ImageSchedule::kPerRound ? "per_round" : "global";
}

ImageSchedule ParseImageSchedule(const std::string& name) {
  if (name == "per_round") return ImageSchedule::kPerRound;
  if (name == "global") return ImageSchedule::kGlobal;
  throw std::invalid_argument("unknown image schedule '" + name +
                              "' (expected per_round or global)");
}

int64_t ImageSchedulePeriod(const V2Options& o) {
  return std::max<int64_t>(1, o.image_schedule == ImageSchedule::kPerRound
                                  ? o.sample_iterations
                                  : o.rounds * o.sample_iterations);
}

void ValidateV2Options(const V2Options& o) {
  TORCH_CHECK(o.batch_size >= 1, "V2Options.batch_size must be >= 1, got ", o.batch_size);
  TORCH_CHECK(o.rounds >= 0, "V2Options.rounds must be >= 0, got ", o.rounds);
  TORCH_CHECK(o.sample_iterations >= 1, "V2Options.sample_iterations must be >= 1, got ",
              o.sample_iterations);
  TORCH_CHECK(o.student_iterations >= 0, "V2Options.student_iterations must be >= 0, got ",
              o.student_iterations);
  TORCH_CHECK(o.warmup_iterations >= 0, "V2Options.warmup_iterations must be >= 0, got ",
              o.warmup_iterations);
  TORCH_CHECK(o.image_lr >= 0, "V2Options.image_lr must be >= 0 (0 = architecture default)");
  const int64_t period = ImageSchedulePeriod(o);
  TORCH_CHECK(o.image_warmup >= 0 && o.image_warmup <= period,
              "V2Options.image_warmup must be in [0, ", period, "] for the ",
              ImageScheduleName(o.image_schedule), " schedule, got ", o.image_warmup);
  ValidateAdamOptions({0.0, o.image_beta1, o.image_beta2, o.image_eps, 0.0});
  ValidateAdamOptions({o.student_lr, o.student_beta1, o.student_beta2, o.student_eps, 0.0});
  TORCH_CHECK(o.tv_target_low >= 0 && o.tv_target_low <= o.tv_target_high,
              "V2Options.tv_target_low/high must satisfy 0 <= low <= high");
  TORCH_CHECK(o.init_std >= 0, "V2Options.init_std must be >= 0");
  TORCH_CHECK(o.jitter_limit >= -1, "V2Options.jitter_limit must be >= 0, or -1 for the default");
  TORCH_CHECK(o.flip_probability >= 0 && o.flip_probability <= 1,
              "V2Options.flip_probability must be in [0, 1]");
  TORCH_CHECK(o.discrepancy.temperature > 0, "V2Options.discrepancy.temperature must be > 0");
  TORCH_CHECK(o.student_update == StudentUpdate::kLatentWeights || o.recalibrate_each_round,
              "V2Options: student_update recalibrate_only (B) needs recalibrate_each_round");
}

nlohmann::json V2OptionsToJson(const V2Options& o) {
  return {{"batch_size", o.batch_size},
          {"rounds", o.rounds},
          {"sample_iterations", o.sample_iterations},
          {"student_iterations", o.student_iterations},
          {"warmup_iterations", o.warmup_iterations},
          {"image_lr", o.image_lr},
          {"image_schedule", ImageScheduleName(o.image_schedule)},
          {"image_warmup", o.image_warmup},
          {"image_beta1", o.image_beta1},
          {"image_beta2", o.image_beta2},
          {"image_eps", o.image_eps},
          {"w_entropy", o.weights.entropy},
          {"lambda_tv", o.weights.tv},
          {"lambda_l2", o.weights.l2},
          {"lambda_adv", o.weights.adversarial},
          {"discrepancy", DiscrepancyKindName(o.discrepancy.kind)},
          {"temperature", o.discrepancy.temperature},
          {"temperature_squared_scaling", o.discrepancy.scale_by_temperature_squared},
          {"tv_target_low", o.tv_target_low},
          {"tv_target_high", o.tv_target_high},
          {"init_std", o.init_std},
          {"clamp_init", o.clamp_init},
          {"clamp_to_pixel_box", o.clamp_to_pixel_box},
          {"jitter_limit", o.jitter_limit},
          {"flip_probability", o.flip_probability},
          {"kde_bandwidth", o.kde.bandwidth},
          {"kde_grid_points", o.kde.grid_points},
          {"kde_density_floor", o.kde.density_floor},
          {"student_update", StudentUpdateName(o.student_update)},
          {"train_weights", o.student_parameters.weights},
          {"train_biases", o.student_parameters.biases},
          {"train_norms", o.student_parameters.norms},
          {"student_lr", o.student_lr},
          {"student_beta1", o.student_beta1},
          {"student_beta2", o.student_beta2},
          {"student_eps", o.student_eps},
          {"student_jitter", o.student_jitter},
          {"recalibrate_each_round", o.recalibrate_each_round}};
}

}  // namespace psaq::gen
