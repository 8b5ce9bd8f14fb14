#include "launch/job/checkpoint.h"

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "dist/base/atomic_file.h"
#include "dist/base/scoped_seconds.h"
#include "dist/base/utc_time.h"
#include "model/safetensors.h"

namespace psaq::job {
namespace fs = std::filesystem;
namespace {

constexpr char kFormat[] = "psaq_checkpoint";
constexpr int kFormatVersion = 1;

void Flatten(const nlohmann::json& value, const std::string& prefix, nlohmann::json& out) {
  if (value.is_object() && !value.empty()) {
    for (auto it = value.begin(); it != value.end(); ++it) {
      Flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
    }
  } else {
    out[prefix] = value;
  }
}

std::map<std::string, at::Tensor> ToMap(const model::SafetensorsFile& file) { return file.ToMap(); }

std::string RankFileName(int rank) { return "rank-" + std::to_string(rank) + ".safetensors"; }

}  // namespace

nlohmann::json FlattenJson(const nlohmann::json& value) {
  nlohmann::json out = nlohmann::json::object();
  Flatten(value, "", out);
  return out;
}

std::string OptionsHash(const nlohmann::json& flat_options) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : flat_options.dump()) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  char text[32];
  std::snprintf(text, sizeof(text), "fnv1a64:%016llx", static_cast<unsigned long long>(h));
  return text;
}

CheckpointStore::CheckpointStore(std::string dir, dist::Communicator& comm,
                                 const nlohmann::json& options)
    : dir_(std::move(dir)),
      comm_(comm),
      options_(FlattenJson(options)),
      options_hash_(OptionsHash(options_)) {}

std::string CheckpointStore::StatePath() const { return (fs::path(dir_) / "state.json").string(); }

std::string CheckpointStore::StepDir(int64_t sequence) const {
  return (fs::path(dir_) / ("step-" + std::to_string(sequence))).string();
}

bool CheckpointStore::Exists() const { return fs::exists(StatePath()); }

void CheckpointStore::Write(const CheckpointContent& content) {
  base::ScopedSeconds timer(seconds_);
  const int64_t next = sequence_ + 1;
  const std::string step_dir = StepDir(next);
  base::MakeDirs(step_dir);
  std::map<std::string, std::string> meta = {{"format", kFormat},
                                             {"sequence", std::to_string(next)},
                                             {"rank", std::to_string(comm_.rank())},
                                             {"world_size", std::to_string(comm_.size())},
                                             {"options_hash", options_hash_}};
  model::WriteSafetensors((fs::path(step_dir) / RankFileName(comm_.rank())).string(),
                          content.rank_tensors, meta);
  std::vector<std::string> files;
  for (int r = 0; r < comm_.size(); ++r)
    files.push_back("step-" + std::to_string(next) + "/" + RankFileName(r));
  if (!content.shared_tensors.empty()) {
    files.push_back("step-" + std::to_string(next) + "/shared.safetensors");
    if (comm_.rank() == 0) {
      meta["rank"] = "shared";
      model::WriteSafetensors((fs::path(step_dir) / "shared.safetensors").string(),
                              content.shared_tensors, meta);
    }
  }
  comm_.Barrier();
  if (comm_.rank() == 0) {
    nlohmann::json state = {{"format", kFormat},      {"format_version", kFormatVersion},
                            {"sequence", next},       {"world_size", comm_.size()},
                            {"phase", content.phase}, {"progress", content.progress},
                            {"options", options_},    {"options_hash", options_hash_},
                            {"files", files},         {"created", base::UtcNow()}};
    base::WriteFileAtomic(StatePath(), state.dump(1) + "\n");
    // Older checkpoints are no longer referenced.
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir_, ec)) {
      const std::string name = entry.path().filename().string();
      if (entry.is_directory() && name.rfind("step-", 0) == 0 &&
          name != "step-" + std::to_string(next)) {
        fs::remove_all(entry.path(), ec);
      }
    }
  }
  comm_.Barrier();
  sequence_ = next;
}

std::optional<LoadedCheckpoint> CheckpointStore::Read() {
  base::ScopedSeconds timer(seconds_);
  const std::string path = StatePath();
  if (!fs::exists(path)) return std::nullopt;
  nlohmann::json state;
  try {
    state = nlohmann::json::parse(base::ReadTextFile(path));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": not valid JSON (" + e.what() + ")");
  }
  auto fail = [&](const std::string& why) { throw std::runtime_error(path + ": " + why); };
  if (!state.is_object() || state.value("format", "") != kFormat) fail("not a psaq checkpoint");
  if (state.value("format_version", 0) != kFormatVersion) fail("unsupported format_version");
  for (const char* key : {"sequence", "world_size", "phase", "progress", "options", "files"}) {
    if (!state.contains(key)) fail(std::string("lacks '") + key + "'");
  }
  const int world = state["world_size"].get<int>();
  if (world != comm_.size()) {
    fail("the checkpoint was written by " + std::to_string(world) + " ranks, this job has " +
         std::to_string(comm_.size()) +
         "; resume with the same number of ranks (or start over in a new output directory)");
  }
  const nlohmann::json& saved = state["options"];
  std::string diff;
  for (auto it = options_.begin(); it != options_.end(); ++it) {
    if (!saved.contains(it.key())) {
      diff += "\n  " + it.key() + ": absent in the checkpoint, now " + it.value().dump();
    } else if (saved[it.key()] != it.value()) {
      diff += "\n  " + it.key() + ": checkpoint " + saved[it.key()].dump() + ", now " +
              it.value().dump();
    }
  }
  for (auto it = saved.begin(); it != saved.end(); ++it) {
    if (!options_.contains(it.key())) {
      diff += "\n  " + it.key() + ": checkpoint " + it.value().dump() + ", absent now";
    }
  }
  if (!diff.empty()) {
    fail(
        "the checkpoint was made with different options; resume with the same ones (or start "
        "over in a new output directory):" +
        diff);
  }
  LoadedCheckpoint out;
  out.sequence = state["sequence"].get<int64_t>();
  out.phase = state["phase"].get<std::string>();
  out.progress = state["progress"];
  const std::string step = "step-" + std::to_string(out.sequence) + "/";
  auto read = [&](const std::string& name) {
    const std::string file = (fs::path(dir_) / (step + name)).string();
    if (!fs::exists(file)) fail("lists '" + step + name + "', which is missing");
    model::SafetensorsFile f = model::ReadSafetensors(file);
    auto seq = f.metadata.find("sequence");
    if (seq == f.metadata.end() || seq->second != std::to_string(out.sequence)) {
      throw std::runtime_error(file + ": does not belong to checkpoint " +
                               std::to_string(out.sequence));
    }
    return f;
  };
  model::SafetensorsFile mine = read(RankFileName(comm_.rank()));
  out.rank_file = mine.source;
  out.rank_tensors = ToMap(mine);
  for (const auto& name : state["files"]) {
    if (name.get<std::string>() == step + "shared.safetensors") {
      out.shared_tensors = ToMap(read("shared.safetensors"));
    }
  }
  sequence_ = out.sequence;
  return out;
}

void CheckpointStore::WriteBlob(const std::string& name, const NamedTensors& tensors) const {
  const fs::path blobs = fs::path(dir_) / "blobs";
  base::MakeDirs(blobs.string());
  model::WriteSafetensors((blobs / (name + ".safetensors")).string(), tensors,
                          {{"format", kFormat}, {"options_hash", options_hash_}});
}

std::map<std::string, at::Tensor> CheckpointStore::ReadBlob(const std::string& name) const {
  const std::string path = (fs::path(dir_) / "blobs" / (name + ".safetensors")).string();
  if (!fs::exists(path)) {
    throw std::runtime_error(path + ": missing (the checkpoint refers to it)");
  }
  model::SafetensorsFile f = model::ReadSafetensors(path);
  auto hash = f.metadata.find("options_hash");
  if (hash == f.metadata.end() || hash->second != options_hash_) {
    throw std::runtime_error(path + ": written with different options");
  }
  return ToMap(f);
}

}  // namespace psaq::job
