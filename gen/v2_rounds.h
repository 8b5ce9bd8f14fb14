// PSAQ-ViT V2 as reconstructed in docs/psaq_spec.md §2.4 (R-V2): the samples X and the quantized
// student S evolve in alternating rounds, supervised by the float teacher T. Every knob is in
// V2Options (gen/v2_options.h).
//
//   Init        X = N(0, 1) per global sample index (clamped to the pixel box), per batch an image
//               Adam; the student's parameters become rank 0's.
//   Warm-up     (optional) V1-style steps on every batch: entropy + TV, no cross-entropy.
//   Calibrate   the student's activation ranges from all ranks' X (merged; quant/calibration.h).
//   Round r     1. sample step: for each of this rank's batches, K_x Adam steps on X minimising
//                  w_ent L_ent^T + λ_tv L_tv + λ_l2 L2 - λ_adv mean D(T(X̃), S(X̃)), with S in
//                  kQuantized mode (straight-through, gradients reach X through both models);
//               2. student step (Variant A only): K_s iterations of: for every batch of this rank,
//                  D on (jittered) X with T under no-grad, backward into the student's trainable
//                  parameters; gradients all-reduced; one identical Adam step on every rank;
//               3. re-calibration of the ranges on all ranks' X (if recalibrate_each_round).
//
// Exact global mean over uneven shards: in the student step rank r back-propagates
// (world / N) * sum over its samples of D_i, where N is the number of samples of ALL ranks, and
// the gradients are AVERAGED (kAvg) over ranks, which gives (1/N) * sum over all samples of grad
// D_i: the gradient of the mean discrepancy over all N samples, whatever the shard sizes (a rank
// without samples contributes zeros). The result equals one rank holding all N samples in the
// same batches, up to float summation order.
//
// Randomness (gen/random_streams.h): image step t of the batch with first index f (t counts
// warm-up and round steps together) jitters with StepRng(seed, kV2SampleStream, f, t); student
// iteration s of round r jitters batch f with StepRng(seed, kV2StudentStream, f, r * K_s + s).
// Nothing depends on the rank, so results do not depend on the world size given the batches.
//
// Models: the rounds see the teacher and the student only through gen/v2_models.h (V2Models), so
// the same rounds run a classifier (ClassifierV2Models) or a detector (DetectorV2Models).
//
// Collective: the constructor, WarmupAndCalibrate and RunRound are called by every rank in the
// same order (ranks may hold different numbers of batches, including none).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dist/communicator.h"
#include "dist/grad_sync.h"
#include "gen/adam.h"
#include "gen/feature_capture.h"
#include "gen/image_batch.h"
#include "gen/v2_models.h"
#include "gen/v2_options.h"
#include "model/vision_model.h"
#include "quant/quantized_model.h"

namespace psaq::gen {

// What the progress callback sees.
struct V2Progress {
  std::string phase;               // "warmup" | "sample" | "student"
  int64_t round = 0;               // 1-based during rounds, 0 in the warm-up
  int64_t batch_first_index = -1;  // the batch (sample and warm-up steps); -1 for student steps
  int64_t iteration = 0;           // steps completed in this phase of this round (and batch)
  int64_t total_iterations = 0;
  LossTerms loss;  // sample/warm-up: this step's loss; student: discrepancy is the
                   // global mean D of the step (all ranks)
};

// Wall time per part of the algorithm on this rank, and the student's gradient traffic.
struct V2Timings {
  double warmup_seconds = 0;
  double sample_seconds = 0;
  double student_seconds = 0;
  double calibration_seconds = 0;
  dist::GradSyncStats grad_sync;     // summed over all student steps
  int64_t image_sample_steps = 0;    // samples x image steps on this rank (sample + warm-up)
  int64_t student_sample_steps = 0;  // samples x student iterations on this rank
};

class V2Rounds {
 public:
  // Collective (broadcasts the student's parameters from rank 0). `teacher`: float, eval mode;
  // `student`: a QuantizedModel of a copy of the teacher, same device; both outlive this object.
  // `batches`: this rank's batches as (first global index, count), possibly none;
  // `global_samples`: the samples of all ranks together (N above).
  // REQUIRES (TORCH_CHECK): valid options, global_samples >= 1.
  V2Rounds(model::VisionModel& teacher, quant::QuantizedModel& student, const V2Options& options,
           uint64_t seed, dist::Communicator& comm,
           const std::vector<std::pair<int64_t, int64_t>>& batches, int64_t global_samples);
  // The same on any teacher-student pair (`models` outlives this object). options.discrepancy
  // is then the models' business (ClassifierV2Models reads it; a detector has its own).
  V2Rounds(V2Models& models, const V2Options& options, uint64_t seed, dist::Communicator& comm,
           const std::vector<std::pair<int64_t, int64_t>>& batches, int64_t global_samples);

  // Rounds completed: -1 before the initial calibration, 0 after it, r after round r.
  int64_t completed_rounds() const { return completed_rounds_; }
  bool Done() const { return completed_rounds_ >= options_.rounds; }

  // The warm-up (local; no-op when warmup_iterations == 0), then the initial calibration
  // (collective). REQUIRES: completed_rounds() == -1. Afterwards completed_rounds() == 0.
  void WarmupAndCalibrate();

  // Collective. One round. REQUIRES: 0 <= completed_rounds() < rounds.
  void RunRound();

  // Called after every step of every phase (may throw to abandon the run).
  void set_progress_callback(std::function<void(const V2Progress&)> callback) {
    progress_ = std::move(callback);
  }

  // Collective. The gradient half of student iteration `iteration` (0-based) of round `round`
  // (1-based): every trainable parameter's .grad() becomes the gradient of the mean D over all
  // samples of all ranks (see above). Returns that mean D. RunRound calls it, then the Adam step;
  // public for tests of the exact mean.
  double StudentGradients(int64_t round, int64_t iteration);
  // The student parameters the student step trains (Variant A), by name.
  const std::vector<std::pair<std::string, at::Tensor>>& trainable_parameters() const {
    return trainable_;
  }

  std::vector<ImageBatch>& batches() { return batches_; }
  const std::vector<ImageBatch>& batches() const { return batches_; }
  V2Models& models() { return models_; }
  const V2Timings& timings() const { return timings_; }
  const V2Options& options() const { return options_; }

  // The shared (rank-independent) state: the student's parameters and ranges ("student."), its
  // Adam state ("student_adam.") and the round counter ("v2.completed_rounds", int64 0-dim).
  std::vector<std::pair<std::string, at::Tensor>> ExportSharedState() const;
  // This rank's state: every batch ("batch.<first index>." + ExportImageBatch).
  std::vector<std::pair<std::string, at::Tensor>> ExportRankState() const;
  // Restores both (from the maps ExportSharedState / ExportRankState were written to). Throws
  // std::runtime_error naming `source` on anything missing or mismatched.
  void ImportState(const std::map<std::string, at::Tensor>& shared,
                   const std::map<std::string, at::Tensor>& rank, const std::string& source);

 private:
  V2Rounds(std::unique_ptr<V2Models> owned, V2Models* models, const V2Options& options,
           uint64_t seed, dist::Communicator& comm,
           const std::vector<std::pair<int64_t, int64_t>>& batches, int64_t global_samples);
  double ImageLr(int64_t step) const;
  void ImageStep(ImageBatch& batch, bool warmup, int64_t round, int64_t phase_iteration,
                 int64_t phase_total);
  void StudentStep(int64_t round);
  void Report(V2Progress progress);

  // The classifier pair when constructed from a VisionModel; models_ refers to it or to the
  // caller's.
  std::unique_ptr<V2Models> owned_models_;
  V2Models& models_;
  V2Options options_;
  uint64_t seed_;
  dist::Communicator& comm_;
  int64_t global_samples_;
  double base_lr_;
  int64_t jitter_limit_;
  at::Tensor box_lo_;
  at::Tensor box_hi_;
  std::vector<ImageBatch> batches_;
  std::vector<std::pair<std::string, at::Tensor>> trainable_;
  std::unique_ptr<Adam> student_adam_;
  KdeOptions kde_;  // models_.EntropyKde(options_.kde)
  // The teacher's targets per batch during an unjittered student step.
  std::vector<std::vector<at::Tensor>> teacher_cache_;
  int64_t completed_rounds_ = -1;
  V2Timings timings_;
  std::function<void(const V2Progress&)> progress_;
};

}  // namespace psaq::gen
