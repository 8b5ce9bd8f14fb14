// The options of the patch-similarity entropy's kernel density estimate, shared by the reference
// (gen/kde_entropy.h) and the fused implementation (gen/fused_entropy.h); the choice between them
// is made in gen/patch_similarity_entropy.h. Nothing here computes an entropy, so option holders
// (V1Options, V2Options, the objective) include only this header.
#pragma once

#include <cstdint>

namespace psaq::gen {

// Which code computes PatchSimilarityEntropyPerImage (and the functions built on it).
enum class KdeImplementation {
  // gen/kde_entropy.h: S and the (B, G, M) kernel tensor as ATen ops, kept by autograd. The
  // reference.
  kReference,
  // gen/fused_entropy.h: similarities and kernel sums on the fly, nothing of size M kept;
  // backward recomputes them. Same values and gradients to rounding (tests/gen/fused_entropy*).
  kFused,
};

struct KdeOptions {
  // Standard deviation h of the Gaussian kernel, in cosine-similarity units. Official default
  // 0.01 (GaussianKernel(bandwidth=0.01)). Must be > 0.
  double bandwidth = 0.01;
  // Number of evaluation points G of the density between s_min and s_max (torch.linspace steps).
  // Official: 10. Must be >= 2.
  int64_t grid_points = 10;
  // Added to the density before -p*log(p), keeping the log finite where p underflows.
  // Official: 1e-4. Must be > 0.
  double density_floor = 1e-4;
  // Similarity values per chunk when summing the kernel over M; 0 = all M at once (the official
  // (B, G, M) tensor). Chunking changes only the summation order (results agree to ~1e-15
  // relative in float64); it bounds the forward temporaries to B * G * chunk_size values.
  // kFused on the CPU: similarities per parallel task (rows of one window, at least one row);
  // 0 = automatic (whole windows, or row blocks when there are fewer windows than threads).
  // It changes only the summation order there too; memory does not depend on it.
  int64_t chunk_size = 0;
  // kReference (default) or kFused; see KdeImplementation. Only PatchSimilarityEntropyPerImage
  // and the functions built on it (PatchSimilarityEntropy, PatchSimilarityEntropyLoss; all in
  // gen/patch_similarity_entropy.h) switch; the S-based functions (KdeEntropyPerImage, ...) are
  // always the reference.
  KdeImplementation implementation = KdeImplementation::kReference;
};

// REQUIRES-style validation of `options` shared by both implementations; throws (TORCH_CHECK)
// naming the bad field.
void CheckKdeOptions(const KdeOptions& options);

}  // namespace psaq::gen
