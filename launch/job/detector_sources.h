// A detector's calibration samples from the sources that need no optimisation (noise, real),
// sharded over ranks as launch/job/calibration_sources.h does for classifiers: each returns the
// rows of the global indices dist::ShardRange(N, world, rank) in order, and a sample depends
// only on its index and the seed (not on the world size).
//
// Every sample is [3, S, S] in the detector's normalised space, S = the job's image size
// (DetectorImageSize). A real image is normalised with the detector config's mean/std and
// zero-padded on the bottom/right to S x S, as quant/evaluate_detector.h pads a batch, so the
// detector sees it calibrating exactly as it sees it evaluating.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <string>

#include "launch/job/job_options.h"
#include "launch/job/v1_run.h"  // ShardSamples
#include "model/detect/detector_config.h"

namespace psaq::job {

// The side S of the samples: `requested` when > 0 (it must be a multiple of
// config.size_divisor()); else, for kReal, the largest side of the N chosen training images
// (their JSON sizes, no decoding) rounded up to size_divisor(). Throws std::runtime_error naming
// --image_size for 0 with another source, a side that is not a multiple of size_divisor(), or
// a chosen image larger than `requested`.
int64_t DetectorImageSize(const QuantizeJobOptions& options, const detect::DetectorConfig& config);

// N(0, 1) per sample (gen/random_streams.h SampleNoise), [n, in_chans, S, S].
ShardSamples DetectorNoiseShard(const detect::DetectorConfig& config, int64_t image_size,
                                uint64_t seed, int64_t num_samples, int world, int rank,
                                const at::Device& device);

// The images at positions 0..N-1 of the seeded permutation of the COCO set real.dataset
// (SeededSelection; the same choice on every rank), normalised and padded to S x S.
// real.on_bad_image = kFail: an image that does not decode throws std::runtime_error naming it;
// kSkip: it is replaced by the first image that decodes at positions i + N, i + 2N, ... (as
// RealShard) and counted in ShardSamples::skipped, as are (on rank 0 only, so that the sum over
// ranks counts them once) the images the set left out when it was opened. Throws model::DatasetError for a set that
// cannot be opened, std::runtime_error when it has fewer than N images.
ShardSamples DetectorRealShard(const RealDataOptions& real, const detect::DetectorConfig& config,
                               int64_t image_size, uint64_t seed, int64_t num_samples, int world,
                               int rank, const at::Device& device);

}  // namespace psaq::job
