// The losses minimised over the synthetic images, from model outputs already computed on the
// jittered batch x̃ (gen/feature_capture.h gives the features):
//
// V1 (docs/psaq_spec.md §1.5):
//   L = w_ent * L_ent + w_ce * CE(T(x̃), y) + w_tv * |TV(x̃) - v|
//   L_ent = -sum over blocks of H (gen/patch_similarity_entropy.h PatchSimilarityEntropyLoss on
//   the teacher's av_mean features), CE the mean cross-entropy against the random labels y, TV
//   the target-matching total variation (gen/image_prior.h) with the batch's target v.
// V2 sample step (R-V2, §2.4; no labels):
//   L = w_ent * L_ent + λ_tv * |TV(x̃) - v| + λ_l2 * L2(x̃) - λ_adv * mean_b D_b
//   L2 = mean over images of ||x̃_b||_2 (ImageL2Prior), D_b the teacher-student discrepancy of
//   image b (below). Minimising -λ_adv D pushes the samples toward where the student is wrong.
//
// Discrepancy D (per image b, so that callers can form exact means over shards):
//   kKlLogits    KL(softmax(z_T/τ) || softmax(z_S/τ)) = sum_k p_T,k (log p_T,k - log p_S,k), from
//                log_softmax (finite where p underflows), times τ² when
//                scale_by_temperature_squared (Hinton et al. 2015: keeps the gradient scale
//                independent of τ; no effect at the default τ = 1).
//   kMseFeatures mean over blocks of the mean over each block output's elements of image b of
//                (f_T - f_S)², on the "<block>.out" features: for backbones without a classifier.
// A term whose weight is 0 is not computed (and reported as 0).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "gen/kde_options.h"

namespace psaq::gen {

// One evaluation of a loss: the differentiable total and every term's unweighted value.
struct LossTerms {
  at::Tensor total;          // scalar, differentiable w.r.t. the images
  double total_value = 0;    // total, as a host double
  double entropy = 0;        // L_ent = -sum_blocks H (negative: lower is more diverse)
  double cross_entropy = 0;  // V1's CE
  double tv = 0;             // |TV(x̃) - v|
  double l2 = 0;             // L2 image prior (V2)
  double discrepancy = 0;    // mean_b D_b (V2)
};

struct V1LossWeights {
  double entropy = 1.0;        // w_ent; official 1
  double cross_entropy = 1.0;  // w_ce; official 1; 0 for V2's warm-up (no category guidance)
  double tv = 0.05;            // w_tv; official 0.05 (V1Options defaults to 0, see there)
};

struct V2SampleWeights {
  double entropy = 1.0;      // w_ent (R-V2 keeps V1's prior at weight 1)
  double tv = 0.0;           // λ_tv: R-V2 suggested V1's 0.05; 0 as psaq's V1 (V1Options::weights)
  double l2 = 0.0;           // λ_l2 (off by default)
  double adversarial = 1.0;  // λ_adv (R-V2 suggests 1)
};

enum class DiscrepancyKind { kKlLogits, kMseFeatures };
// "kl_logits" / "mse_features"; Parse throws std::invalid_argument naming the accepted values.
std::string DiscrepancyKindName(DiscrepancyKind kind);
DiscrepancyKind ParseDiscrepancyKind(const std::string& name);

struct DiscrepancyOptions {
  DiscrepancyKind kind = DiscrepancyKind::kKlLogits;  // R-V2's classification default
  double temperature = 1.0;                           // τ > 0; R-V2 default 1
  bool scale_by_temperature_squared = true;           // multiply KL by τ² (see above)
};

// V1's loss. av_means: the teacher's per-block features of x̃ (w_ent != 0); logits [B, K] and
// labels int64 [B] (w_ce != 0); x_jittered [B, C, H, W]; tv_target: the batch's v.
// REQUIRES (TORCH_CHECK): inputs present for every non-zero weight, matching batch sizes.
LossTerms V1Loss(const std::vector<at::Tensor>& av_means, const at::Tensor& logits,
                 const at::Tensor& labels, const at::Tensor& x_jittered, double tv_target,
                 const V1LossWeights& weights, const KdeOptions& kde = {});

// V2's sample loss. discrepancy: D_b [B] (needed when λ_adv != 0).
LossTerms V2SampleLoss(const std::vector<at::Tensor>& av_means, const at::Tensor& x_jittered,
                       double tv_target, const at::Tensor& discrepancy,
                       const V2SampleWeights& weights, const KdeOptions& kde = {});

// KL(softmax(t/τ) || softmax(s/τ)) per row (times τ² if asked): [B] from logits [B, K].
at::Tensor KlDiscrepancy(const at::Tensor& teacher_logits, const at::Tensor& student_logits,
                         const DiscrepancyOptions& options = {});

// Per-image feature MSE averaged over blocks: [B] from per-block tensors [B, ...] of equal
// shapes pairwise. REQUIRES (TORCH_CHECK): same non-zero number of blocks, matching shapes.
at::Tensor FeatureMseDiscrepancy(const std::vector<at::Tensor>& teacher_features,
                                 const std::vector<at::Tensor>& student_features);

}  // namespace psaq::gen
