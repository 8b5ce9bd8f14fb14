// This rank's calibration samples from the sources that need no optimisation (PSAQ's modes 1
// and 2, and samples written by an earlier run). Each returns the rows of the global indices
// dist::ShardRange(N, world, rank) in order, so the ranks together hold samples 0..N-1.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <vector>

#include "launch/job/job_options.h"
#include "launch/job/sample_store.h"
#include "launch/job/v1_run.h"
#include "model/config.h"

namespace psaq::job {

// N(0, 1) per sample in normalised space (gen/random_streams.h SampleNoise), NOT clamped to the
// pixel box (PSAQ's mode 1 feeds torch.randn as is).
ShardSamples NoiseShard(const model::ModelConfig& config, uint64_t seed, int64_t num_samples,
                        int world, int rank, const at::Device& device);

// The `num_samples` training images at positions 0..N-1 of a seeded permutation of the dataset
// (Fisher-Yates driven by DeriveSeed(seed, kRealShuffleStream, 0): the same on every rank),
// preprocessed for `config` (model/data/preprocess.h). Sample index i is dataset image perm[i].
// An image that does not decode (model::ImageDataset::Decode: unreadable, corrupt, over the file
// size or pixel limits) is handled by real.on_bad_image:
//   kFail  std::runtime_error naming it (its first line; the rank's other ones below);
//   kSkip  a warning naming it (with the rank), and sample i takes the first image that decodes
//          at positions i + N, i + 2N, ... of the permutation instead (N = num_samples), so the
//          samples depend neither on the world size nor on other samples' images; counted in
//          ShardSamples::skipped (every image skipped, replacements that fail too).
//          std::runtime_error when no position is left for sample i (the dataset holds no more
//          than i + N images, or the images at all of them fail too).
// Throws model::DatasetError for a missing dataset, std::runtime_error when the dataset has
// fewer than num_samples images.
ShardSamples RealShard(const RealDataOptions& real, const model::ModelConfig& config, uint64_t seed,
                       int64_t num_samples, int world, int rank, const at::Device& device);

// The first `count` entries of the seeded permutation of [0, dataset_size).
std::vector<int64_t> SeededSelection(uint64_t seed, int64_t dataset_size, int64_t count);

// This rank's rows of a complete sample set read from `sources` (ReadSampleSet); *set_out, when
// given, receives the set's metadata and file list (images dropped).
ShardSamples SampleFileShard(const std::vector<std::string>& sources,
                             const model::ModelConfig& config, int world, int rank,
                             const at::Device& device, SampleSet* set_out = nullptr);

}  // namespace psaq::job
