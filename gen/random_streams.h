// Counter-based randomness of sample generation: every random value of a run is a pure function
// of (job seed, purpose, counters), through dist::DeriveSeed. No generator state is carried from
// one draw to the next, so
//   - a sample's values depend on its GLOBAL index, never on the rank or world size that made it;
//   - a run's "RNG state" is just (seed, counters): a resumed run redraws the same values from the
//     counters it stored (launch/job/checkpoint.h), and nothing else needs saving.
//
// Counters:
//   per sample   (global sample index i):       initial noise, V1 label
//   per batch    (its first global index f):    TV target v
//   per step     (f, step counter t):           jitter offset and flip; t counts the optimiser
//                                                steps of the batch's phase (see each caller)
// Each purpose has its own stream constant, so equal counters used for two purposes give
// unrelated values.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <random>

namespace psaq::gen {

// Stream constants (arbitrary distinct 64-bit tags; changing one changes every run's samples).
inline constexpr uint64_t kNoiseStream = 0x6e6f697365000001ULL;        // "noise"
inline constexpr uint64_t kLabelStream = 0x6c6162656c000002ULL;        // "label"
inline constexpr uint64_t kTvTargetStream = 0x7476746172000003ULL;     // "tvtar"
inline constexpr uint64_t kV1JitterStream = 0x76316a6974000004ULL;     // "v1jit"
inline constexpr uint64_t kV2SampleStream = 0x7632736d70000005ULL;     // "v2smp"
inline constexpr uint64_t kV2StudentStream = 0x7632737475000006ULL;    // "v2stu"
inline constexpr uint64_t kRealShuffleStream = 0x7265616c73000007ULL;  // "reals"

// Standard normal noise times `stddev` for `count` consecutive samples starting at global index
// `first_index`: float32 [count, C, H, W] on the CPU. Sample i is drawn by its own CPU generator
// seeded with DeriveSeed(seed, kNoiseStream, i), so row k equals what any other call yields for
// index first_index + k. REQUIRES (TORCH_CHECK): count >= 0, first_index >= 0, C, H, W >= 1,
// stddev >= 0.
at::Tensor SampleNoise(uint64_t seed, int64_t first_index, int64_t count, int64_t channels,
                       int64_t height, int64_t width, double stddev = 1.0);

// V1's random label of global sample `index`: uniform in [0, num_classes) (int64).
// REQUIRES (TORCH_CHECK): num_classes >= 1, index >= 0.
int64_t SampleLabel(uint64_t seed, int64_t index, int64_t num_classes);

// Labels of `count` samples from `first_index`: int64 [count] on the CPU.
at::Tensor SampleLabels(uint64_t seed, int64_t first_index, int64_t count, int64_t num_classes);

// The TV target of the batch whose first global index is `first_index` and whose element count
// is `numel`: v ~ U(low, high) (one draw, top 53 bits), sized for kTvReferenceNumel elements,
// scaled by sqrt(numel / kTvReferenceNumel) (gen/image_prior.h ScaleTvTarget).
// REQUIRES (TORCH_CHECK): 0 <= low <= high, numel >= 1, first_index >= 0.
double BatchTvTarget(uint64_t seed, int64_t first_index, int64_t numel, double low, double high);

// A generator for step `step` of the batch starting at `first_index`, in stream `stream`:
// seeded with DeriveSeed(DeriveSeed(seed, stream, first_index), stream, step).
std::mt19937_64 StepRng(uint64_t seed, uint64_t stream, int64_t first_index, int64_t step);

}  // namespace psaq::gen
