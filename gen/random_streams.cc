#include "gen/random_streams.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "dist/partition.h"
#include "gen/image_prior.h"

namespace psaq::gen {

at::Tensor SampleNoise(uint64_t seed, int64_t first_index, int64_t count, int64_t channels,
                       int64_t height, int64_t width, double stddev) {
  TORCH_CHECK(count >= 0 && first_index >= 0, "SampleNoise: bad range first_index=", first_index,
              " count=", count);
  TORCH_CHECK(channels >= 1 && height >= 1 && width >= 1, "SampleNoise: bad image shape [",
              channels, ", ", height, ", ", width, "]");
  TORCH_CHECK(stddev >= 0, "SampleNoise: stddev must be >= 0, got ", stddev);
  at::Tensor out = at::empty({count, channels, height, width}, at::kFloat);
  // One generator per sample index: a sample's noise does not depend on which batch or rank
  // draws it.
  for (int64_t k = 0; k < count; ++k) {
    const uint64_t index = static_cast<uint64_t>(first_index + k);
    at::Generator gen = at::detail::createCPUGenerator(dist::DeriveSeed(seed, kNoiseStream, index));
    at::Tensor row = out[k];
    row.normal_(0.0, stddev, gen);
  }
  return out;
}

int64_t SampleLabel(uint64_t seed, int64_t index, int64_t num_classes) {
  TORCH_CHECK(num_classes >= 1, "SampleLabel: num_classes must be >= 1, got ", num_classes);
  TORCH_CHECK(index >= 0, "SampleLabel: index must be >= 0, got ", index);
  std::mt19937_64 rng(dist::DeriveSeed(seed, kLabelStream, static_cast<uint64_t>(index)));
  // Modulo of a 64-bit draw: bias num_classes / 2^64, immaterial.
  return static_cast<int64_t>(rng() % static_cast<uint64_t>(num_classes));
}

at::Tensor SampleLabels(uint64_t seed, int64_t first_index, int64_t count, int64_t num_classes) {
  TORCH_CHECK(count >= 0, "SampleLabels: count must be >= 0, got ", count);
  at::Tensor out = at::empty({count}, at::kLong);
  int64_t* data = out.data_ptr<int64_t>();
  for (int64_t k = 0; k < count; ++k) data[k] = SampleLabel(seed, first_index + k, num_classes);
  return out;
}

double BatchTvTarget(uint64_t seed, int64_t first_index, int64_t numel, double low, double high) {
  TORCH_CHECK(low >= 0 && low <= high, "BatchTvTarget: need 0 <= low <= high, got [", low, ", ",
              high, "]");
  TORCH_CHECK(first_index >= 0, "BatchTvTarget: first_index must be >= 0, got ", first_index);
  std::mt19937_64 rng(dist::DeriveSeed(seed, kTvTargetStream, static_cast<uint64_t>(first_index)));
  const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;  // [0, 1)
  return ScaleTvTarget(low + (high - low) * u, numel);
}

// Seeded from the batch and the step alone, with no state carried between steps, so a resumed
// batch replays the same draws.
std::mt19937_64 StepRng(uint64_t seed, uint64_t stream, int64_t first_index, int64_t step) {
  const uint64_t batch_seed = dist::DeriveSeed(seed, stream, static_cast<uint64_t>(first_index));
  return std::mt19937_64(dist::DeriveSeed(batch_seed, stream, static_cast<uint64_t>(step)));
}

}  // namespace psaq::gen
