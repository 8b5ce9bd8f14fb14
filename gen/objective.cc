#include "gen/objective.h"

#include <ATen/ATen.h>

#include <stdexcept>

#include "gen/image_prior.h"

namespace psaq::gen {
namespace {

// Fills the host values of `terms` from the detached scalars with one device-to-host copy.
void ReadValues(LossTerms& terms, const std::vector<std::pair<double*, at::Tensor>>& parts) {
  std::vector<at::Tensor> scalars;
  scalars.push_back(terms.total.detach().to(at::kDouble).reshape({1}));
  for (const auto& part : parts)
    scalars.push_back(part.second.detach().to(at::kDouble).reshape({1}));
  at::Tensor host = at::cat(scalars).cpu();
  const double* v = host.data_ptr<double>();
  terms.total_value = v[0];
  for (size_t i = 0; i < parts.size(); ++i) *parts[i].first = v[i + 1];
}

}  // namespace

std::string DiscrepancyKindName(DiscrepancyKind kind) {
  return kind == DiscrepancyKind::kKlLogits ? "kl_logits" : "mse_features";
}

DiscrepancyKind ParseDiscrepancyKind(const std::string& name) {
  if (name == "kl_logits") return DiscrepancyKind::kKlLogits;
  if (name == "mse_features") return DiscrepancyKind::kMseFeatures;
  throw std::invalid_argument("unknown discrepancy '" + name +
                              "' (expected kl_logits or mse_features)");
}

LossTerms V1Loss(const std::vector<at::Tensor>& av_means, const at::Tensor& logits,
                 const at::Tensor& labels, const at::Tensor& x_jittered, double tv_target,
                 const V1LossWeights& weights, const KdeOptions& kde) {
  TORCH_CHECK(x_jittered.dim() == 4, "V1Loss: images must be [B, C, H, W], got ",
              x_jittered.sizes());
  const int64_t batch = x_jittered.size(0);
  LossTerms terms;
  std::vector<std::pair<double*, at::Tensor>> parts;
  at::Tensor total = at::zeros({}, x_jittered.options());
  if (weights.entropy != 0) {
    at::Tensor ent = PatchSimilarityEntropyLoss(av_means, batch, kde);
    total = total + weights.entropy * ent;
    parts.emplace_back(&terms.entropy, ent);
  }
  if (weights.cross_entropy != 0) {
    TORCH_CHECK(logits.defined() && logits.dim() == 2 && logits.size(0) == batch,
                "V1Loss: logits must be [", batch, ", K]");
    TORCH_CHECK(labels.defined() && labels.dim() == 1 && labels.size(0) == batch &&
                    labels.scalar_type() == at::kLong,
                "V1Loss: labels must be int64 [", batch, "]");
    at::Tensor log_p = at::log_softmax(logits, 1);
    at::Tensor ce = -log_p.gather(1, labels.to(logits.device()).unsqueeze(1)).mean();
    total = total + weights.cross_entropy * ce;
    parts.emplace_back(&terms.cross_entropy, ce);
  }
  if (weights.tv != 0) {
    at::Tensor tv = TotalVariationTargetLoss(x_jittered, tv_target);
    total = total + weights.tv * tv;
    parts.emplace_back(&terms.tv, tv);
  }
  terms.total = total;
  ReadValues(terms, parts);
  return terms;
}

LossTerms V2SampleLoss(const std::vector<at::Tensor>& av_means, const at::Tensor& x_jittered,
                       double tv_target, const at::Tensor& discrepancy,
                       const V2SampleWeights& weights, const KdeOptions& kde) {
  TORCH_CHECK(x_jittered.dim() == 4, "V2SampleLoss: images must be [B, C, H, W], got ",
              x_jittered.sizes());
  const int64_t batch = x_jittered.size(0);
  LossTerms terms;
  std::vector<std::pair<double*, at::Tensor>> parts;
  at::Tensor total = at::zeros({}, x_jittered.options());
  if (weights.entropy != 0) {
    at::Tensor ent = PatchSimilarityEntropyLoss(av_means, batch, kde);
    total = total + weights.entropy * ent;
    parts.emplace_back(&terms.entropy, ent);
  }
  if (weights.tv != 0) {
    at::Tensor tv = TotalVariationTargetLoss(x_jittered, tv_target);
    total = total + weights.tv * tv;
    parts.emplace_back(&terms.tv, tv);
  }
  if (weights.l2 != 0) {
    at::Tensor l2 = ImageL2Prior(x_jittered);
    total = total + weights.l2 * l2;
    parts.emplace_back(&terms.l2, l2);
  }
  if (weights.adversarial != 0) {
    TORCH_CHECK(discrepancy.defined() && discrepancy.dim() == 1 && discrepancy.size(0) == batch,
                "V2SampleLoss: discrepancy must be [", batch, "]");
    at::Tensor d = discrepancy.mean();
    total = total - weights.adversarial * d;
    parts.emplace_back(&terms.discrepancy, d);
  }
  terms.total = total;
  ReadValues(terms, parts);
  return terms;
}

at::Tensor KlDiscrepancy(const at::Tensor& teacher_logits, const at::Tensor& student_logits,
                         const DiscrepancyOptions& options) {
  TORCH_CHECK(teacher_logits.dim() == 2 && teacher_logits.sizes() == student_logits.sizes(),
              "KlDiscrepancy: logits must be equal [B, K], got ", teacher_logits.sizes(), " and ",
              student_logits.sizes());
  TORCH_CHECK(options.temperature > 0, "KlDiscrepancy: temperature must be > 0, got ",
              options.temperature);
  const double tau = options.temperature;
  at::Tensor log_t = at::log_softmax(teacher_logits / tau, 1);
  at::Tensor log_s = at::log_softmax(student_logits / tau, 1);
  at::Tensor kl = (log_t.exp() * (log_t - log_s)).sum(1);  // [B]
  return options.scale_by_temperature_squared ? kl * (tau * tau) : kl;
}

at::Tensor FeatureMseDiscrepancy(const std::vector<at::Tensor>& teacher_features,
                                 const std::vector<at::Tensor>& student_features) {
  TORCH_CHECK(!teacher_features.empty() && teacher_features.size() == student_features.size(),
              "FeatureMseDiscrepancy: need the same non-zero number of blocks, got ",
              teacher_features.size(), " and ", student_features.size());
  at::Tensor sum;
  for (size_t i = 0; i < teacher_features.size(); ++i) {
    const at::Tensor& t = teacher_features[i];
    const at::Tensor& s = student_features[i];
    TORCH_CHECK(t.dim() >= 2 && t.sizes() == s.sizes(), "FeatureMseDiscrepancy: block ", i,
                " shapes ", t.sizes(), " and ", s.sizes());
    at::Tensor mse = (t - s).pow(2).reshape({t.size(0), -1}).mean(1);  // [B]
    sum = sum.defined() ? sum + mse : mse;
  }
  return sum / static_cast<double>(teacher_features.size());
}

}  // namespace psaq::gen
