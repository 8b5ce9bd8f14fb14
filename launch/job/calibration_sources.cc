#include "launch/job/calibration_sources.h"

#include <ATen/ATen.h>

#include <memory>
#include <random>
#include <set>
#include <stdexcept>

#include "dist/fatal.h"
#include "dist/logging.h"
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

namespace {

// kFail: the first undecodable image on the first line, any others below it.
[[noreturn]] void FailOnBadImages(const std::vector<model::DecodeFailure>& failures) {
  std::string text = failures.front().error +
                     " (a real calibration image that cannot be decoded; --on_bad_image=skip "
                     "replaces it)";
  if (failures.size() > 1) {
    text += "\n" + std::to_string(failures.size() - 1) + " more on this rank:";
    for (size_t i = 1; i < failures.size(); ++i) text += "\n  " + failures[i].error;
  }
  throw std::runtime_error(text);
}

// kSkip: the rows of `batch` (made from `indices`, the dataset images at permutation positions
// first..first+n-1) with every undecodable image replaced by the first that decodes at positions
// p + N, p + 2N, ... of the full permutation (N = num_samples, p the sample's own position).
at::Tensor ReplaceBadImages(const model::ImageDataset& dataset, const model::ModelConfig& config,
                            uint64_t seed, int64_t num_samples, int64_t first,
                            const std::vector<int64_t>& indices, const model::Batch& batch,
                            int64_t* skipped) {
  const std::vector<int64_t> perm = SeededSelection(seed, dataset.size(), dataset.size());
  std::set<int64_t> failed;
  for (const model::DecodeFailure& f : batch.failures) failed.insert(f.index);
  std::vector<at::Tensor> rows;
  int64_t next_kept = 0;
  for (size_t k = 0; k < indices.size(); ++k) {
    if (failed.count(indices[k]) == 0) {
      rows.push_back(batch.images[next_kept++]);
      continue;
    }
    const int64_t p = first + static_cast<int64_t>(k);
    std::string error = dataset.SourceOf(indices[k]);
    for (const model::DecodeFailure& f : batch.failures) {
      if (f.index == indices[k]) error = f.error;
    }
    for (int64_t q = p + num_samples;; q += num_samples) {
      LOG(WARNING) << dist::RankPrefix() << "skipping malformed image " << error
                   << " (real calibration sample " << p << ")";
      ++*skipped;
      if (q >= dataset.size()) {
        throw std::runtime_error(
            "real calibration sample " + std::to_string(p) + ": no image left to replace " + error +
            " (sample p takes the first decodable image at positions p + k*" +
            std::to_string(num_samples) + ", k >= 1, of the seeded order of the " +
            std::to_string(dataset.size()) + " images)");
      }
      model::Batch one = model::MakeBatch(dataset, {perm[static_cast<size_t>(q)]}, config);
      if (one.failures.empty()) {
        rows.push_back(one.images[0]);
        break;
      }
      error = one.failures.front().error;
    }
  }
  return at::stack(rows);
}

}  // namespace

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
  ShardSamples out;
  out.indices = at::arange(mine.begin, mine.end);
  if (batch.failures.empty()) {
    out.images = batch.images.to(device);
    return out;
  }
  if (real.on_bad_image == quant::BadImagePolicy::kFail) FailOnBadImages(batch.failures);
  out.images = ReplaceBadImages(*dataset, config, seed, num_samples, mine.begin, indices, batch,
                                &out.skipped)
                   .to(device);
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
