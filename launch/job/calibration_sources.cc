#include "launch/job/calibration_sources.h"

#include <ATen/ATen.h>

#include <memory>
#include <random>
#include <stdexcept>

#include "dist/partition.h"
#include "gen/random_streams.h"
#include "model/data/dataset.h"
#include "model/data/idx_dataset.h"
#include "model/data/image_folder.h"

namespace psaq::job {

ShardSamples NoiseShard(const model::ModelConfig& config, uint64_t seed, int64_t num_samples,
                        int world, int rank, const at::Device& device) {
  const dist::Range mine = dist::ShardRange(num_samples, world, rank);
  const int64_t s = config.img_size();
  ShardSamples out;
  out.images = gen::SampleNoise(seed, mine.begin, mine.size(), config.in_chans(), s, s).to(device);
  out.indices = at::arange(mine.begin, mine.end);
  return out;
}

std::vector<int64_t> SeededSelection(uint64_t seed, int64_t dataset_size, int64_t count) {
  TORCH_CHECK(count >= 0 && count <= dataset_size, "SeededSelection: cannot pick ", count, " of ",
              dataset_size);
  std::vector<int64_t> perm(static_cast<size_t>(dataset_size));
  for (int64_t i = 0; i < dataset_size; ++i) perm[static_cast<size_t>(i)] = i;
  std::mt19937_64 rng(dist::DeriveSeed(seed, gen::kRealShuffleStream, 0));
  // Fisher-Yates, stopping once the first `count` positions are final.
  for (int64_t i = 0; i < count; ++i) {
    const uint64_t span = static_cast<uint64_t>(dataset_size - i);
    const int64_t j = i + static_cast<int64_t>(rng() % span);
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
  }
  perm.resize(static_cast<size_t>(count));
  return perm;
}

ShardSamples RealShard(const RealDataOptions& real, const model::ModelConfig& config, uint64_t seed,
                       int64_t num_samples, int world, int rank, const at::Device& device) {
  std::unique_ptr<model::ImageDataset> dataset;
  if (real.dataset == "fashion_mnist") {
    dataset = std::make_unique<model::FashionMnist>(real.dataset_dir, real.split);
  } else {
    dataset = std::make_unique<model::ImageFolder>(real.dataset);
  }
  if (dataset->size() < num_samples) {
    throw std::runtime_error(dataset->Describe() + ": has " + std::to_string(dataset->size()) +
                             " images, fewer than the " + std::to_string(num_samples) +
                             " calibration samples asked for");
  }
  const std::vector<int64_t> chosen = SeededSelection(seed, dataset->size(), num_samples);
  const dist::Range mine = dist::ShardRange(num_samples, world, rank);
  std::vector<int64_t> indices(chosen.begin() + mine.begin, chosen.begin() + mine.end);
  model::Batch batch = model::MakeBatch(*dataset, indices, config);
  if (!batch.failures.empty()) {
    std::string list;
    for (const auto& f : batch.failures) list += "\n  " + f.error;
    throw std::runtime_error("real calibration images that do not decode (" +
                             std::to_string(batch.failures.size()) + "):" + list);
  }
  ShardSamples out;
  out.images = batch.images.to(device);
  out.indices = at::arange(mine.begin, mine.end);
  return out;
}

ShardSamples SampleFileShard(const std::vector<std::string>& sources,
                             const model::ModelConfig& config, int world, int rank,
                             const at::Device& device, SampleSet* set_out) {
  SampleSet set = ReadSampleSet(sources);
  CheckSamplesFitModel(set, config, set.files.front());
  const dist::Range mine = dist::ShardRange(set.num_samples(), world, rank);
  ShardSamples out;
  out.images = set.images.slice(0, mine.begin, mine.end).to(device);
  out.indices = at::arange(mine.begin, mine.end);
  if (set_out != nullptr) {
    set_out->metadata = set.metadata;
    set_out->files = set.files;
  }
  return out;
}

}  // namespace psaq::job
