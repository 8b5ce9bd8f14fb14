#include "launch/job/sample_store.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <stdexcept>

#include "dist/base/atomic_file.h"
#include "dist/base/utc_time.h"
#include "model/safetensors.h"

namespace psaq::job {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void Fail(const std::string& what, const std::string& why) {
  throw std::runtime_error(what + ": " + why);
}

const std::regex& ShardPattern() {
  static const std::regex pattern(R"(shard-\d+-of-\d+\.safetensors)");
  return pattern;
}

// The shard files directly inside `dir`, sorted.
std::vector<std::string> ShardsIn(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && std::regex_match(name, ShardPattern())) {
      out.push_back(entry.path().string());
    }
  }
  if (ec) Fail(dir.string(), "cannot list the directory: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

std::string Meta(const model::SafetensorsFile& file, const std::string& key) {
  auto it = file.metadata.find(key);
  if (it == file.metadata.end()) Fail(file.source, "metadata lacks '" + key + "'");
  return it->second;
}

// The shard files named by `sources` (files, or directories holding shards directly or in their
// "samples" subdirectory), sorted, each once.
std::vector<std::string> ShardFiles(const std::vector<std::string>& sources) {
  if (sources.empty()) throw std::runtime_error("no sample files given");
  std::vector<std::string> files;
  for (const std::string& source : sources) {
    const fs::path p(source);
    if (fs::is_regular_file(p)) {
      files.push_back(p.string());
    } else if (fs::is_directory(p)) {
      std::vector<std::string> found = ShardsIn(p);
      if (found.empty() && fs::is_directory(p / "samples")) found = ShardsIn(p / "samples");
      if (found.empty()) Fail(source, "no shard-<r>-of-<n>.safetensors sample files here");
      files.insert(files.end(), found.begin(), found.end());
    } else {
      Fail(source, "no such file or directory");
    }
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  return files;
}

// Reads the shard at `path` and checks it on its own (format, tensors, num_samples, returned in
// *num_samples) and, unless it is the first, against the first shard `first`.
model::SafetensorsFile ReadShard(const std::string& path, const model::SafetensorsFile* first,
                                 int64_t* num_samples) {
  model::SafetensorsFile f = model::ReadSafetensors(path);
  auto format = f.metadata.find("format");
  if (format == f.metadata.end() || format->second != kSamplesFormat) {
    Fail(path, "not a psaq sample file (metadata 'format' is not 'psaq_samples')");
  }
  if (Meta(f, "format_version") != kSamplesFormatVersion) {
    Fail(path, "unsupported format_version '" + Meta(f, "format_version") + "'");
  }
  const at::Tensor& images = f.Get("images");
  const at::Tensor& indices = f.Get("indices");
  if (images.dim() != 4 || images.scalar_type() != at::kFloat) {
    Fail(path, "'images' must be float32 [n, C, H, W]");
  }
  if (indices.dim() != 1 || indices.scalar_type() != at::kLong ||
      indices.size(0) != images.size(0)) {
    Fail(path, "'indices' must be int64 [" + std::to_string(images.size(0)) + "]");
  }
  try {
    *num_samples = std::stoll(Meta(f, "num_samples"));
  } catch (const std::logic_error&) {
    Fail(path, "metadata 'num_samples' is not an integer");
  }
  if (first != nullptr) {
    for (const char* key : {"num_samples", "method", "arch", "config", "seed"}) {
      if (Meta(f, key) != Meta(*first, key)) {
        Fail(path, std::string("metadata '") + key + "' = '" + Meta(f, key) + "' differs from " +
                       first->source + "'s '" + Meta(*first, key) + "'");
      }
    }
    if (images.sizes().slice(1) != first->Get("images").sizes().slice(1)) {
      Fail(path, "image shape " + c10::str(images.sizes().slice(1)) + " differs from " +
                     first->source + "'s " + c10::str(first->Get("images").sizes().slice(1)));
    }
  }
  return f;
}

// Every index 0..total-1 exactly once over all shards (files[s] is shards[s]'s path).
void CheckEveryIndexOnce(const std::vector<model::SafetensorsFile>& shards,
                         const std::vector<std::string>& files, int64_t total) {
  std::vector<int> owner(static_cast<size_t>(total), -1);
  for (size_t s = 0; s < shards.size(); ++s) {
    const at::Tensor& indices = shards[s].Get("indices");
    const int64_t* idx = indices.data_ptr<int64_t>();
    for (int64_t k = 0; k < indices.numel(); ++k) {
      if (idx[k] < 0 || idx[k] >= total) {
        Fail(files[s], "sample index " + std::to_string(idx[k]) + " is outside [0, " +
                           std::to_string(total) + ")");
      }
      int& o = owner[static_cast<size_t>(idx[k])];
      if (o >= 0) {
        Fail(files[s], "sample index " + std::to_string(idx[k]) + " also appears in " +
                           (o == static_cast<int>(s) ? std::string("this file") : files[o]));
      }
      o = static_cast<int>(s);
    }
  }
  std::vector<int64_t> missing;
  for (int64_t i = 0; i < total; ++i) {
    if (owner[static_cast<size_t>(i)] < 0) missing.push_back(i);
  }
  if (!missing.empty()) {
    std::string first_few;
    for (size_t k = 0; k < std::min<size_t>(missing.size(), 5); ++k) {
      first_few += (k ? ", " : "") + std::to_string(missing[k]);
    }
    throw std::runtime_error("incomplete sample set (" + std::to_string(files.size()) +
                             " files, first " + files.front() +
                             "): " + std::to_string(missing.size()) + " of " +
                             std::to_string(total) + " sample indices are missing (" + first_few +
                             (missing.size() > 5 ? ", ..." : "") + "); is a shard missing?");
  }
}

}  // namespace

std::string SampleShardName(int rank, int count) {
  return "shard-" + std::to_string(rank) + "-of-" + std::to_string(count) + ".safetensors";
}

std::string WriteSampleShard(const std::string& dir, const at::Tensor& images,
                             const at::Tensor& indices, const model::ModelConfig& config,
                             const SampleShardInfo& info) {
  return WriteSampleShard(dir, images, indices, model::ConfigToMetadata(config), info);
}

std::string WriteSampleShard(const std::string& dir, const at::Tensor& images,
                             const at::Tensor& indices,
                             const std::map<std::string, std::string>& model_metadata,
                             const SampleShardInfo& info) {
  TORCH_CHECK(images.dim() == 4 && images.scalar_type() == at::kFloat,
              "WriteSampleShard: images must be float32 [n, C, H, W], got ", images.sizes(), " ",
              images.scalar_type());
  TORCH_CHECK(
      indices.dim() == 1 && indices.scalar_type() == at::kLong && indices.size(0) == images.size(0),
      "WriteSampleShard: indices must be int64 [", images.size(0), "]");
  TORCH_CHECK(info.rank >= 0 && info.rank < info.count && info.num_samples >= 0,
              "WriteSampleShard: bad shard ", info.rank, " of ", info.count);
  std::map<std::string, std::string> metadata = model_metadata;
  for (const auto& [k, v] : info.extra) metadata[k] = v;
  metadata["format"] = kSamplesFormat;
  metadata["format_version"] = kSamplesFormatVersion;
  metadata["method"] = info.method;
  metadata["num_samples"] = std::to_string(info.num_samples);
  metadata["shard_rank"] = std::to_string(info.rank);
  metadata["shard_count"] = std::to_string(info.count);
  metadata["seed"] = std::to_string(info.seed);
  metadata["options"] = info.options_json.empty() ? "{}" : info.options_json;
  metadata["model"] = info.model;
  metadata["psaq_version"] = PSAQ_VERSION;
  metadata["created"] = base::UtcNow();
  base::MakeDirs(dir);
  const std::string path = (fs::path(dir) / SampleShardName(info.rank, info.count)).string();
  model::WriteSafetensors(
      path,
      {{"images", images.detach().cpu().contiguous()}, {"indices", indices.cpu().contiguous()}},
      metadata);
  return path;
}

SampleSet ReadSampleSet(const std::vector<std::string>& sources) {
  SampleSet set;
  set.files = ShardFiles(sources);
  std::vector<model::SafetensorsFile> shards;
  int64_t total = -1;  // N, from the first shard (ReadShard checks that the others agree)
  for (const std::string& path : set.files) {
    int64_t n = 0;
    shards.push_back(ReadShard(path, shards.empty() ? nullptr : &shards.front(), &n));
    if (total < 0) total = n;
  }
  CheckEveryIndexOnce(shards, set.files, total);
  const at::IntArrayRef shape = shards.front().Get("images").sizes();
  set.images = at::empty({total, shape[1], shape[2], shape[3]}, at::kFloat);
  for (const auto& shard : shards) {
    set.images.index_copy_(0, shard.Get("indices"), shard.Get("images"));
  }
  set.metadata = shards.front().metadata;
  return set;
}

void CheckSamplesFitModel(const SampleSet& samples, const model::ModelConfig& config,
                          const std::string& what) {
  const int64_t c = config.in_chans(), s = config.img_size();
  if (!samples.images.defined() || samples.images.dim() != 4 || samples.images.size(1) != c ||
      samples.images.size(2) != s || samples.images.size(3) != s) {
    throw std::runtime_error(what + ": samples are " +
                             (samples.images.defined() ? c10::str(samples.images.sizes().slice(1))
                                                       : std::string("undefined")) +
                             " but the model takes [" + std::to_string(c) + ", " +
                             std::to_string(s) + ", " + std::to_string(s) + "] images");
  }
}

}  // namespace psaq::job
