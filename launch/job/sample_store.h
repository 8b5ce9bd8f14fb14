// Calibration samples on disk: each rank writes its shard, and any later run (calibration from
// a sample file, another bit width, an evaluation) reads all shards back as one set.
//
// Layout: "<dir>/shard-<r>-of-<n>.safetensors" (the job uses <output_dir>/samples), one per rank,
// written atomically (model/safetensors.h). Tensors:
//   "images"   float32 [n, C, H, W]   normalised (mean/std) space, as the model consumes them
//   "indices"  int64 [n]              the global sample index of each row
// Metadata (strings): "format" = "psaq_samples", "format_version" = "1", "method" (psaq_v1 |
// psaq_v2 | noise | real), "num_samples" (N, all shards together), "shard_rank", "shard_count",
// "seed", "options" (JSON of the generation options), "model" (the model argument: preset or
// path), the model's "arch" / "config" / "preprocess" / "name" (model::ConfigToMetadata),
// "psaq_version", "created" (UTC ISO 8601), plus any extra entries the caller adds.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/config.h"

namespace psaq::job {

inline constexpr char kSamplesFormat[] = "psaq_samples";
inline constexpr char kSamplesFormatVersion[] = "1";

// "shard-<rank>-of-<count>.safetensors".
std::string SampleShardName(int rank, int count);

struct SampleShardInfo {
  std::string method;       // psaq_v1 | psaq_v2 | noise | real
  int64_t num_samples = 0;  // N over all shards
  int rank = 0;             // this shard
  int count = 1;            // shards (= world size)
  uint64_t seed = 0;
  std::string options_json;                  // the generation options ("{}" when none)
  std::string model;                         // the model argument (preset or weights path)
  std::map<std::string, std::string> extra;  // more metadata entries
};

// Writes "<dir>/SampleShardName(rank, count)" (creating dir). images: float32 [n, C, H, W] (any
// device; n may be 0), indices: int64 [n]. Throws c10::Error on bad shapes or dtypes and
// std::runtime_error naming the path on an I/O error. Returns the path.
std::string WriteSampleShard(const std::string& dir, const at::Tensor& images,
                             const at::Tensor& indices, const model::ModelConfig& config,
                             const SampleShardInfo& info);

// The same with the model's metadata entries given directly (a detector's
// detect::DetectorConfigToMetadata instead of a classifier's "arch"/"config"/"preprocess").
std::string WriteSampleShard(const std::string& dir, const at::Tensor& images,
                             const at::Tensor& indices,
                             const std::map<std::string, std::string>& model_metadata,
                             const SampleShardInfo& info);

struct SampleSet {
  at::Tensor images;  // float32 [N, C, H, W], rows in global index order 0..N-1
  std::map<std::string, std::string> metadata;  // the first shard's (common keys are checked)
  std::vector<std::string> files;               // the shards read, sorted
  int64_t num_samples() const { return images.defined() ? images.size(0) : 0; }
};

// Reads a complete sample set. Each source is a shard file or a directory; a directory is
// searched for shard-*-of-*.safetensors (in itself, or in its "samples" subdirectory when it has
// none). Throws std::runtime_error with the file and the reason when:
//   - a source does not exist, or a directory holds no shard;
//   - a file is not a psaq sample shard (format), has an unsupported format_version, lacks
//     "images"/"indices" or has them of the wrong dtype or shape;
//   - shards disagree on num_samples, method, arch, config, seed or image shape (naming both);
//   - an index is outside [0, N) or appears twice (naming both files), or indices are missing
//     (saying how many and the first few): every index 0..N-1 must occur exactly once.
SampleSet ReadSampleSet(const std::vector<std::string>& sources);

// Throws std::runtime_error naming `what` unless the images are [N, in_chans, img_size,
// img_size] for `config`.
void CheckSamplesFitModel(const SampleSet& samples, const model::ModelConfig& config,
                          const std::string& what);

}  // namespace psaq::job
