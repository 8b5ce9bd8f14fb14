// Every knob of the PSAQ-ViT V2 reconstruction R-V2 (docs/psaq_spec.md §2.4). The paper's values
// are unknown (§2.3); the defaults are the spec's "suggested starting values" and are meant to be
// replaced by the benchmark's ablation. gen/v2_rounds.h describes the algorithm.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "gen/kde_options.h"
#include "gen/objective.h"
#include "gen/v2_student.h"

namespace psaq::gen {

// What the student step changes.
enum class StudentUpdate {
  kLatentWeights,    // Variant A: Adam on the latent float weights through the STE
  kRecalibrateOnly,  // Variant B: no student step; only the activation ranges are re-calibrated
};
// "latent_weights" / "recalibrate_only"; Parse throws std::invalid_argument.
std::string StudentUpdateName(StudentUpdate update);
StudentUpdate ParseStudentUpdate(const std::string& name);

// The image learning-rate schedule of the rounds.
enum class ImageSchedule {
  kPerRound,  // V1's warm-up + cosine restarted every round (period K_x)
  kGlobal,    // one warm-up + cosine over all rounds (period R * K_x)
};
std::string ImageScheduleName(ImageSchedule schedule);  // "per_round" / "global"
ImageSchedule ParseImageSchedule(const std::string& name);

struct V2Options {
  // Samples per batch (one image optimiser, one KDE grid, one TV term). Spec: N = 32, one batch.
  int64_t batch_size = 32;
  // Cycles R. Spec: 10-20.
  int64_t rounds = 10;
  // Image Adam steps per round on each batch, K_x. Spec: 50-100.
  int64_t sample_iterations = 50;
  // Student steps per round, K_s (Variant A only). Spec: 50-100.
  int64_t student_iterations = 50;
  // V1-style steps (entropy + TV, no CE) on every batch before the initial calibration; 0 = the
  // student is calibrated on the initial noise. Its schedule is one warm-up + cosine of this
  // length. Default 0.
  int64_t warmup_iterations = 0;

  // Image optimiser: peak lr (0 = ArchDefaultImageLr: 0.25 Swin, 0.20 ViT), schedule, linear
  // warm-up steps within the schedule's period (must not exceed it), Adam betas and eps. The Adam
  // state carries over from the warm-up through all rounds (as over V1's epochs).
  double image_lr = 0;
  ImageSchedule image_schedule = ImageSchedule::kPerRound;
  int64_t image_warmup = 10;
  double image_beta1 = 0.5;
  double image_beta2 = 0.9;
  double image_eps = 1e-8;

  // Sample loss weights: w_ent 1, λ_tv 0 (R-V2 suggested 0.05; see V2SampleWeights), λ_l2 0,
  // λ_adv 1.
  V2SampleWeights weights;
  // D: KL on logits with τ = 1 (τ² scaling on), or MSE on block outputs.
  DiscrepancyOptions discrepancy;
  // TV target range at 32 x 3 x 224 x 224 (scaled per batch), as V1.
  double tv_target_low = 2500;
  double tv_target_high = 3000;
  // Initial noise std; clamp X to the pixel box after drawing it (R-V2) and after every step.
  double init_std = 1.0;
  bool clamp_init = true;
  bool clamp_to_pixel_box = true;
  // Roll limit in pixels for the sample steps (and the student steps when jittered); -1 = V1's
  // first-epoch limit 15 at 224 px scaled to the image size. Flip probability 0.5.
  int64_t jitter_limit = -1;
  double flip_probability = 0.5;
  // The entropy term's KDE (V1's defaults).
  KdeOptions kde;

  // Student.
  StudentUpdate student_update = StudentUpdate::kLatentWeights;
  // Which latent parameters Variant A trains (weights; optionally biases, LayerNorms).
  StudentParameterOptions student_parameters;
  // Student Adam: lr (spec: 1e-6 to 1e-5), betas, eps.
  double student_lr = 1e-5;
  double student_beta1 = 0.9;
  double student_beta2 = 0.999;
  double student_eps = 1e-8;
  // Fresh jitter of X at every student step (true), or the plain X (false; the teacher's outputs
  // are then computed once per round).
  bool student_jitter = true;
  // Re-calibrate the student's activation ranges at the end of every round, on all ranks'
  // current samples (merged). Variant B requires it (otherwise nothing changes). Default true.
  bool recalibrate_each_round = true;
};

// The length in steps of one period of the image learning-rate schedule: sample_iterations
// (per_round) or rounds * sample_iterations (global), at least 1. image_warmup must not exceed it.
int64_t ImageSchedulePeriod(const V2Options& options);

// Throws c10::Error naming the field for an invalid value.
void ValidateV2Options(const V2Options& options);
// Every field, by name.
nlohmann::json V2OptionsToJson(const V2Options& options);

}  // namespace psaq::gen
