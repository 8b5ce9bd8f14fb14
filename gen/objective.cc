#include "gen/objective.h"

#include <ATen/ATen.h>

#include <stdexcept>

#include "gen/image_prior.h"
#include "gen/patch_similarity_entropy.h"

namespace psaq::gen {
namespace {

// A weighted sum of loss terms that remembers each term, so that all the host values are read
// with one device-to-host copy at the end.
class TermSum {
 public:
  explicit TermSum(const at::Tensor& like) : total_(at::zeros({}, like.options())) {}

  // Adds weight * term to the total; *value receives the term's value in Finish.
  void Add(double weight, const at::Tensor& term, double* value) {
    total_ = total_ + weight * term;
    parts_.emplace_back(value, term);
  }

  // The patch-similarity entropy and the TV target, the image priors V1 and V2 share.
  void AddImagePriors(LossTerms& terms, const std::vector<at::Tensor>& av_means,
                      const at::Tensor& x_jittered, double tv_target, double entropy_weight,
                      double tv_weight, const KdeOptions& kde) {
    if (entropy_weight != 0)
      Add(entropy_weight, PatchSimilarityEntropyLoss(av_means, x_jittered.size(0), kde),
          &terms.entropy);
    if (tv_weight != 0)
      Add(tv_weight, TotalVariationTargetLoss(x_jittered, tv_target), &terms.tv);
  }

  void Finish(LossTerms& terms) const {
    terms.total = total_;
    std::vector<at::Tensor> scalars{total_.detach().to(at::kDouble).reshape({1})};
    for (const auto& part : parts_)
      scalars.push_back(part.second.detach().to(at::kDouble).reshape({1}));
    at::Tensor host = at::cat(scalars).cpu();
    const double* v = host.data_ptr<double>();
    terms.total_value = v[0];
    for (size_t i = 0; i < parts_.size(); ++i) *parts_[i].first = v[i + 1];
  }

 private:
  at::Tensor total_;
  std::vector<std::pair<double*, at::Tensor>> parts_;
};

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
  TermSum sum(x_jittered);
  sum.AddImagePriors(terms, av_means, x_jittered, tv_target, weights.entropy, weights.tv, kde);
  if (weights.cross_entropy != 0) {
    TORCH_CHECK(logits.defined() && logits.dim() == 2 && logits.size(0) == batch,
                "V1Loss: logits must be [", batch, ", K]");
    TORCH_CHECK(labels.defined() && labels.dim() == 1 && labels.size(0) == batch &&
                    labels.scalar_type() == at::kLong,
                "V1Loss: labels must be int64 [", batch, "]");
    // torch's cross_entropy (mean reduction) spelled out: -log softmax at the label.
    at::Tensor log_p = at::log_softmax(logits, 1);
    at::Tensor ce = -log_p.gather(1, labels.to(logits.device()).unsqueeze(1)).mean();
    sum.Add(weights.cross_entropy, ce, &terms.cross_entropy);
  }
  sum.Finish(terms);
  return terms;
}

LossTerms V2SampleLoss(const std::vector<at::Tensor>& av_means, const at::Tensor& x_jittered,
                       double tv_target, const at::Tensor& discrepancy,
                       const V2SampleWeights& weights, const KdeOptions& kde) {
  TORCH_CHECK(x_jittered.dim() == 4, "V2SampleLoss: images must be [B, C, H, W], got ",
              x_jittered.sizes());
  const int64_t batch = x_jittered.size(0);
  LossTerms terms;
  TermSum sum(x_jittered);
  sum.AddImagePriors(terms, av_means, x_jittered, tv_target, weights.entropy, weights.tv, kde);
  if (weights.l2 != 0) {
    sum.Add(weights.l2, ImageL2Prior(x_jittered), &terms.l2);
  }
  if (weights.adversarial != 0) {
    TORCH_CHECK(discrepancy.defined() && discrepancy.dim() == 1 && discrepancy.size(0) == batch,
                "V2SampleLoss: discrepancy must be [", batch, "]");
    sum.Add(-weights.adversarial, discrepancy.mean(), &terms.discrepancy);
  }
  sum.Finish(terms);
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
  // KL(teacher || student) per image from log-probabilities (log_softmax rather than the log of
  // a softmax: no log(0) for confident logits).
  at::Tensor log_t = at::log_softmax(teacher_logits / tau, 1);
  at::Tensor log_s = at::log_softmax(student_logits / tau, 1);
  at::Tensor kl = (log_t.exp() * (log_t - log_s)).sum(1);  // [B]
  // Softened logits shrink the gradient by 1/tau^2; tau^2 restores its scale (Hinton et al.).
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
