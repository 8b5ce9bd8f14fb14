#include "launch/job/detector_sources.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "dist/fatal.h"
#include "dist/logging.h"
#include "dist/partition.h"
#include "gen/random_streams.h"
#include "launch/job/calibration_sources.h"  // SeededSelection
#include "model/data/coco_dataset.h"
#include "model/data/dataset_by_name.h"
#include "quant/evaluate_detector.h"  // PreprocessDetectionBatch

namespace psaq::job {
namespace {

std::unique_ptr<data::CocoDataset> OpenRealSet(const RealDataOptions& real) {
  data::CocoOptions coco;
  coco.on_bad_entry = real.on_bad_image == quant::BadImagePolicy::kSkip
                          ? data::BadEntryPolicy::kSkip
                          : data::BadEntryPolicy::kFail;
  return model::OpenDetectionDataset(real.dataset, "", coco);
}

int64_t RoundUp(int64_t x, int64_t d) { return (x + d - 1) / d * d; }

}  // namespace

int64_t DetectorImageSize(const QuantizeJobOptions& options,
                          const detect::DetectorConfig& config) {
  const int64_t d = config.size_divisor();
  if (options.detector_image_size > 0 && options.detector_image_size % d != 0) {
    throw std::runtime_error("--image_size=" + std::to_string(options.detector_image_size) +
                             " is not a multiple of the detector's size divisor " +
                             std::to_string(d));
  }
  if (options.source != CalibrationSource::kReal) {
    if (options.detector_image_size <= 0) {
      throw std::runtime_error("--method=" + CalibrationSourceName(options.source) +
                               " on a detector needs --image_size (the side of the square "
                               "samples, a multiple of " + std::to_string(d) + ")");
    }
    return options.detector_image_size;
  }
  const auto dataset = OpenRealSet(options.real);
  if (dataset->size() < options.num_samples) {
    throw std::runtime_error(options.real.dataset + ": holds " + std::to_string(dataset->size()) +
                             " images, fewer than --num_samples=" +
                             std::to_string(options.num_samples));
  }
  int64_t side = 0;
  for (int64_t i : SeededSelection(options.seed, dataset->size(), options.num_samples)) {
    const data::CocoImage& image = dataset->image(i);
    side = std::max({side, image.height, image.width});
  }
  if (options.detector_image_size <= 0) return RoundUp(side, d);
  if (side > options.detector_image_size) {
    throw std::runtime_error("--image_size=" + std::to_string(options.detector_image_size) +
                             " is smaller than a chosen calibration image of " +
                             options.real.dataset + " (side " + std::to_string(side) + ")");
  }
  return options.detector_image_size;
}

ShardSamples DetectorNoiseShard(const detect::DetectorConfig& config, int64_t image_size,
                                uint64_t seed, int64_t num_samples, int world, int rank,
                                const at::Device& device) {
  const dist::Range mine = dist::ShardRange(num_samples, world, rank);
  ShardSamples out;
  out.images =
      gen::SampleNoise(seed, mine.begin, mine.size(), config.in_chans, image_size, image_size)
          .to(device);
  out.indices = at::arange(mine.begin, mine.end);
  return out;
}

ShardSamples DetectorRealShard(const RealDataOptions& real, const detect::DetectorConfig& config,
                               int64_t image_size, uint64_t seed, int64_t num_samples, int world,
                               int rank, const at::Device& device) {
  const auto dataset = OpenRealSet(real);
  if (dataset->size() < num_samples) {
    throw std::runtime_error(real.dataset + ": holds " + std::to_string(dataset->size()) +
                             " images, fewer than --num_samples=" + std::to_string(num_samples));
  }
  // The whole permutation: replacements for undecodable images come from its later positions.
  const std::vector<int64_t> perm = SeededSelection(seed, dataset->size(), dataset->size());
  const dist::Range mine = dist::ShardRange(num_samples, world, rank);
  ShardSamples out;
  // Images the dataset left out when it was opened (with --on_bad_image=skip: a file that is
  // missing or whose header does not read) count as skipped too, once over the ranks.
  if (rank == 0) out.skipped += dataset->skipped_images();
  std::vector<at::Tensor> rows;
  for (int64_t i = mine.begin; i < mine.end; ++i) {
    data::CocoSample sample;
    std::string error;
    int64_t p = i;
    while (!dataset->Decode(perm[static_cast<size_t>(p)], &sample, &error)) {
      if (real.on_bad_image == quant::BadImagePolicy::kFail) {
        throw std::runtime_error(error +
                                 " (a real calibration image that cannot be decoded; "
                                 "--on_bad_image=skip replaces it)");
      }
      LOG(WARNING) << dist::RankPrefix() << "skipping calibration image " << error;
      ++out.skipped;
      p += num_samples;
      if (p >= dataset->size()) {
        throw std::runtime_error(real.dataset + ": no decodable replacement left for sample " +
                                 std::to_string(i));
      }
    }
    if (sample.image.size(0) > image_size || sample.image.size(1) > image_size) {
      throw std::runtime_error(dataset->ImagePath(perm[static_cast<size_t>(p)]) +
                               ": larger than the samples' side " + std::to_string(image_size));
    }
    const at::Tensor x = quant::PreprocessDetectionBatch({sample.image}, config)[0];
    rows.push_back(at::constant_pad_nd(
        x, {0, image_size - x.size(2), 0, image_size - x.size(1)}));
  }
  out.images = rows.empty() ? at::zeros({0, config.in_chans, image_size, image_size})
                            : at::stack(rows);
  out.images = out.images.to(device);
  out.indices = at::arange(mine.begin, mine.end);
  return out;
}

}  // namespace psaq::job
