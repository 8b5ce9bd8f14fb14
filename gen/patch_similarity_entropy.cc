#include "gen/patch_similarity_entropy.h"

#include <ATen/ATen.h>

#include "gen/fused_entropy.h"
#include "gen/kde_entropy.h"
#include "gen/patch_similarity.h"

namespace psaq::gen {

at::Tensor PatchSimilarityEntropyPerImage(const at::Tensor& av_mean, int64_t batch_size,
                                          const KdeOptions& options) {
  CheckKdeOptions(options);
  if (options.implementation == KdeImplementation::kFused) {
    return FusedPatchSimilarityEntropyPerImage(av_mean, batch_size, options);
  }
  return KdeEntropyPerImage(PatchSimilarityPerImage(av_mean, batch_size), options);
}

at::Tensor PatchSimilarityEntropy(const at::Tensor& av_mean, int64_t batch_size,
                                  const KdeOptions& options) {
  return PatchSimilarityEntropyPerImage(av_mean, batch_size, options).mean();
}

at::Tensor PatchSimilarityEntropyLoss(const std::vector<at::Tensor>& av_means, int64_t batch_size,
                                      const KdeOptions& options) {
  TORCH_CHECK(!av_means.empty(), "PatchSimilarityEntropyLoss: no block features given");
  at::Tensor loss;
  for (const at::Tensor& f : av_means) {
    at::Tensor h = PatchSimilarityEntropy(f, batch_size, options);
    loss = loss.defined() ? loss - h : -h;
  }
  return loss;
}

}  // namespace psaq::gen
