// Checkpoints of a distributed generation run, written so that a run killed at ANY moment
// (SIGKILL, node failure, preemption) leaves a usable checkpoint and never a half-written one that
// looks complete.
//
// Layout under `dir` (the job uses <output_dir>/checkpoint):
//   state.json                     the ONLY entry point: which checkpoint is current
//   step-<seq>/rank-<r>.safetensors   rank r's state at checkpoint <seq> (e.g. its samples, their
//                                     Adam states, counters)
//   step-<seq>/shared.safetensors     state every rank holds identically (e.g. the V2 student and
//                                     its Adam state), written once, by rank 0
//   blobs/<name>.safetensors          immutable files referenced by later checkpoints (e.g. V1
//                                     batches completed earlier), written once by their owner
// Protocol of Write (collective): every rank writes its file of checkpoint <seq> (atomically:
// temporary name, fsync, rename), rank 0 the shared file; barrier; rank 0 replaces state.json
// atomically (it now names <seq>) and removes older step-* directories; barrier. A kill before
// state.json is replaced leaves the previous checkpoint current and complete; a kill after leaves
// the new one. Temporary files (*.tmp.<pid>) and directories of unfinished checkpoints are never
// read, and are overwritten or removed by later checkpoints.
//
// state.json: {"format": "psaq_checkpoint", "format_version": 1, "sequence", "world_size",
// "phase", "progress" (caller's JSON), "options" (flattened "a.b.c" -> value of everything that
// affects results), "options_hash" (FNV-1a 64 of the canonical options dump), "files", "created"}.
// Resume requires the same world size (each rank's file holds its own shard) and equal options;
// any difference is an error that names it.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dist/communicator.h"

namespace psaq::job {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// What one checkpoint holds.
struct CheckpointContent {
  std::string phase;            // e.g. "v1" or "v2"
  nlohmann::json progress;      // counters, e.g. {"slot": 3, "iteration": 200}
  NamedTensors rank_tensors;    // this rank's
  NamedTensors shared_tensors;  // identical on every rank; only rank 0's are written
};

// A checkpoint read back on one rank.
struct LoadedCheckpoint {
  int64_t sequence = 0;
  std::string phase;
  nlohmann::json progress;
  std::map<std::string, at::Tensor> rank_tensors;
  std::map<std::string, at::Tensor> shared_tensors;
  std::string rank_file;  // for messages
};

// "a": {"b": 1} -> {"a.b": 1}; arrays and scalars are leaves.
nlohmann::json FlattenJson(const nlohmann::json& value);
// "fnv1a64:<16 hex digits>" of options.dump() (keys sorted: canonical).
std::string OptionsHash(const nlohmann::json& flat_options);

class CheckpointStore {
 public:
  // `options`: everything that affects results (flattened here). Reads nothing yet.
  CheckpointStore(std::string dir, dist::Communicator& comm, const nlohmann::json& options);

  const std::string& dir() const { return dir_; }
  // True when dir/state.json exists (a checkpoint to resume from). Local.
  bool Exists() const;

  // Collective (every rank, same order). Writes checkpoint sequence() + 1 as described above.
  // Throws std::runtime_error naming the file on an I/O error.
  void Write(const CheckpointContent& content);
  // The sequence number of the current checkpoint (0 before the first).
  int64_t sequence() const { return sequence_; }

  // Local. Reads state.json and this rank's files. Returns nullopt when there is no state.json.
  // Throws std::runtime_error, naming the file, when state.json is not valid JSON or not a psaq
  // checkpoint, when its world size differs from the communicator's ("written by 4 ranks, this
  // job has 2"), when the options differ (naming every differing option with both values), or
  // when a file it lists is missing or corrupt.
  std::optional<LoadedCheckpoint> Read();

  // Immutable per-owner files: writes dir/blobs/<name>.safetensors atomically (local) / reads it
  // (throws naming the path when missing or corrupt).
  void WriteBlob(const std::string& name, const NamedTensors& tensors) const;
  std::map<std::string, at::Tensor> ReadBlob(const std::string& name) const;

  // Seconds spent in Write and Read on this rank (for the run report).
  double seconds() const { return seconds_; }

 private:
  std::string StatePath() const;
  std::string StepDir(int64_t sequence) const;

  std::string dir_;
  dist::Communicator& comm_;
  nlohmann::json options_;  // flattened
  std::string options_hash_;
  int64_t sequence_ = 0;
  double seconds_ = 0;
};

}  // namespace psaq::job
