#include "launch/job/output_dir.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>

#include "dist/base/atomic_file.h"
#include "dist/collective_util.h"
#include "dist/logging.h"
#include "model/safetensors.h"

namespace psaq::job {
namespace fs = std::filesystem;

std::string SamplesDir(const std::string& d) { return (fs::path(d) / "samples").string(); }
std::string CheckpointDir(const std::string& d) { return (fs::path(d) / "checkpoint").string(); }
std::string ModelPath(const std::string& d) { return (fs::path(d) / "model.safetensors").string(); }
std::string ReportPath(const std::string& d) { return (fs::path(d) / "report.json").string(); }

namespace {

constexpr char kLockName[] = ".psaq.lock";
constexpr size_t kMaxNamed = 20;  // foreign entries named in one error; the rest are counted
// A JSON file psaq wrote is kilobytes; a larger "report.json" is not worth reading to say so.
constexpr uintmax_t kMaxJsonBytes = 64u << 20;

// The JSON object in `path`, or null when it is not one (unreadable, too large, not JSON).
nlohmann::json ReadJsonObject(const fs::path& path) {
  std::error_code ec;
  if (fs::file_size(path, ec) > kMaxJsonBytes || ec) return nullptr;
  try {
    nlohmann::json j = nlohmann::json::parse(base::ReadTextFile(path.string()));
    return j.is_object() ? j : nlohmann::json();
  } catch (const std::exception&) {
    return nullptr;
  }
}

bool IsPsaqReport(const fs::path& path) {
  const nlohmann::json j = ReadJsonObject(path);
  return j.is_object() && j.contains("status") && j["status"].is_string() &&
         j.contains("psaq_version");
}

bool JsonHasFormat(const fs::path& path, const char* format) {
  const nlohmann::json j = ReadJsonObject(path);
  return j.is_object() && j.value("format", "") == format;
}

bool SafetensorsHasFormat(const fs::path& path, const char* format) {
  try {
    const model::SafetensorsFile header = model::ReadSafetensorsHeader(path.string());
    auto it = header.metadata.find("format");
    return it != header.metadata.end() && it->second == format;
  } catch (const std::exception&) {
    return false;
  }
}

// One name psaq writes in a directory of the output tree: a file, with the check that it is
// psaq's (its temporaries "<name>.tmp.<pid>" match too, unchecked: a killed writer leaves them
// half written), or a directory with its own rules.
struct Rule {
  std::regex name;
  std::regex temporary;
  std::function<bool(const fs::path&)> is_psaq;  // files only
  std::string not_psaq;                          // the reason when is_psaq says no
  const std::vector<Rule>* dir = nullptr;        // directories only
};

Rule File(const std::string& pattern, std::function<bool(const fs::path&)> is_psaq,
          std::string not_psaq) {
  return {std::regex(pattern), std::regex(pattern + R"(\.tmp\.[0-9]+)"), std::move(is_psaq),
          std::move(not_psaq), nullptr};
}
Rule Dir(const std::string& pattern, const std::vector<Rule>* rules) {
  return {std::regex(pattern), std::regex("$^"), nullptr, "", rules};
}
std::function<bool(const fs::path&)> Safetensors(const char* format) {
  return [format](const fs::path& p) { return SafetensorsHasFormat(p, format); };
}
std::function<bool(const fs::path&)> Json(const char* format) {
  return [format](const fs::path& p) { return JsonHasFormat(p, format); };
}

// The layout of launch/job/output_dir.h, built once.
const std::vector<Rule>& TopRules() {
  static const auto* step =
      new std::vector<Rule>{File(R"((rank-[0-9]+|shared)\.safetensors)",
                                 Safetensors("psaq_checkpoint"), "not a psaq checkpoint file")};
  static const auto* blobs =
      new std::vector<Rule>{File(R"(v1-batch-[0-9]+\.safetensors)", Safetensors("psaq_checkpoint"),
                                 "not a psaq checkpoint file")};
  static const auto* checkpoint = new std::vector<Rule>{
      File(R"(state\.json)", Json("psaq_checkpoint"), "not a psaq checkpoint"),
      Dir(R"(step-[0-9]+)", step), Dir("blobs", blobs)};
  static const auto* samples =
      new std::vector<Rule>{File(R"(shard-[0-9]+-of-[0-9]+\.safetensors)",
                                 Safetensors("psaq_samples"), "not a psaq sample shard")};
  static const auto* top = new std::vector<Rule>{
      File(R"(report\.json)", IsPsaqReport, "not a psaq report"),
      File(R"(model\.safetensors)", Safetensors("psaq_quantized"), "not a psaq export"),
      File(R"(model\.manifest\.json)", Json("psaq_quantized"), "not a psaq manifest"),
      Dir("samples", samples), Dir("checkpoint", checkpoint)};
  return *top;
}

std::vector<std::string> SortedNames(const fs::path& dir) {
  std::error_code ec;
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) throw std::runtime_error(dir.string() + ": cannot list: " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

void Scan(const fs::path& dir, const std::string& rel, const std::vector<Rule>& rules,
          OutputDirContents& out) {
  for (const std::string& name : SortedNames(dir)) {
    const fs::path path = dir / name;
    std::error_code ec;
    const fs::file_status st = fs::symlink_status(path, ec);
    const bool is_dir = fs::is_directory(st);
    const bool is_file = fs::is_regular_file(st);
    const std::string entry = rel + name + (is_dir ? "/" : "");
    if (rel.empty() && name == kLockName && is_file) continue;  // held by this job
    const Rule* rule = nullptr;
    bool temporary = false;
    for (const Rule& r : rules) {
      temporary = !std::regex_match(name, r.name) && std::regex_match(name, r.temporary);
      if (temporary || std::regex_match(name, r.name)) {
        rule = &r;
        break;
      }
    }
    if (rule == nullptr) {
      out.foreign.push_back({entry, "", false});
      continue;
    }
    const std::string kind = fs::is_symlink(st) ? "a symbolic link"
                             : rule->dir        ? "not a directory"
                                                : "not a regular file";
    if (rule->dir != nullptr ? !is_dir : !is_file) {
      out.foreign.push_back({entry, kind, true});
    } else if (rule->dir != nullptr) {
      Scan(path, entry, *rule->dir, out);
      out.psaq.push_back(rel + name);
    } else if (temporary || rule->is_psaq(path)) {
      out.psaq.push_back(entry);
    } else {
      out.foreign.push_back({entry, rule->not_psaq, true});
    }
  }
}

// "a/, b (not a psaq report), ... and 3 more".
std::string ListForeign(const std::vector<ForeignEntry>& entries) {
  std::string text;
  for (size_t i = 0; i < entries.size() && i < kMaxNamed; ++i) {
    text += (i ? ", " : "") + entries[i].path +
            (entries[i].reason.empty() ? "" : " (" + entries[i].reason + ")");
  }
  if (entries.size() > kMaxNamed) {
    text += " and " + std::to_string(entries.size() - kMaxNamed) + " more";
  }
  return text;
}

// Runs `step` on rank 0 and throws its error, if any, on every rank. Collective.
void OnRankZero(dist::Communicator& comm, const c10::Device& device,
                const std::function<void()>& step) {
  std::string error;
  if (comm.rank() == 0) {
    try {
      step();
    } catch (const c10::Error& e) {
      error = e.what_without_backtrace();
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "unknown error";
    }
  }
  error = dist::BroadcastString(comm, error, 0, dist::CollectiveDevice(comm, device));
  if (!error.empty()) throw std::runtime_error(error);
}

}  // namespace

bool IsFinishedRun(const std::string& output_dir) {
  const std::string path = ReportPath(output_dir);
  if (!fs::exists(path)) return false;
  try {
    const nlohmann::json report = nlohmann::json::parse(base::ReadTextFile(path));
    return report.is_object() && report.value("status", "") == "complete";
  } catch (const nlohmann::json::exception&) {
    return false;  // a torn or foreign file is not a finished run (reports are written atomically)
  }
}

OutputDirContents ScanOutputDir(const std::string& output_dir) {
  OutputDirContents out;
  std::error_code ec;
  if (fs::is_directory(output_dir, ec)) Scan(output_dir, "", TopRules(), out);
  return out;
}

std::string EnclosingRun(const std::string& output_dir, std::string* marker) {
  std::error_code ec;
  fs::path dir = fs::weakly_canonical(fs::absolute(output_dir, ec), ec);
  if (ec) dir = fs::absolute(output_dir, ec).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();  // "a/b/" names b
  for (fs::path up = dir.parent_path(); !up.empty(); up = up.parent_path()) {
    std::string found;
    if (fs::exists(up / kLockName, ec)) {
      found = kLockName;
    } else if (fs::is_regular_file(up / "report.json", ec) && IsPsaqReport(up / "report.json")) {
      found = "report.json";
    } else if (fs::is_regular_file(up / "checkpoint/state.json", ec) &&
               JsonHasFormat(up / "checkpoint/state.json", "psaq_checkpoint")) {
      found = "checkpoint/state.json";
    }
    if (!found.empty()) {
      if (marker != nullptr) *marker = found;
      return up.string();
    }
    if (up == up.parent_path()) break;  // the root
  }
  return "";
}

void RemoveCheckpoint(const std::string& output_dir) {
  try {
    for (const std::string& entry : ScanOutputDir(output_dir).psaq) {
      if (entry.rfind("checkpoint", 0) != 0) continue;
      std::error_code ec;
      fs::remove(fs::path(output_dir) / entry, ec);  // a directory stays when something remains
    }
  } catch (const std::exception&) {
    // Listing failed: the checkpoint stays, which is safe (a later run overwrites or resumes it).
  }
}

PreparedOutputDir PrepareOutputDir(const std::string& output_dir, bool resume, bool overwrite,
                                   const std::string& command, dist::Communicator& comm,
                                   const c10::Device& device) {
  if (fs::exists(output_dir) && !fs::is_directory(output_dir)) {
    throw std::runtime_error(output_dir + ": the output path exists and is not a directory");
  }
  std::string marker;
  const std::string run = EnclosingRun(output_dir, &marker);
  if (!run.empty()) {
    throw std::runtime_error(output_dir + ": is inside the psaq run directory " + run +
                             " (it holds " + marker + "); choose an output directory outside it");
  }
  PreparedOutputDir prepared;
  OnRankZero(comm, device, [&] {
    base::MakeDirs(output_dir);
    base::CheckWritable("output_dir", ReportPath(output_dir));
    prepared.lock = std::make_unique<OutputDirLock>(output_dir, command);
    if (!prepared.lock->warning().empty()) LOG(WARNING) << prepared.lock->warning();
  });
  // Under the lock: no other job changes the directory while we look.
  const bool finished = IsFinishedRun(output_dir);
  const bool checkpoint = fs::exists(fs::path(CheckpointDir(output_dir)) / "state.json");
  if (finished && !overwrite) {
    throw std::runtime_error(output_dir +
                             ": already holds a finished run (report.json says "
                             "\"complete\"); choose another output directory or overwrite it");
  }
  if (checkpoint && !resume && !overwrite) {
    throw std::runtime_error(output_dir +
                             ": holds the checkpoint of an unfinished run; resume "
                             "it, or overwrite to start afresh");
  }
  OnRankZero(comm, device, [&] {
    const OutputDirContents contents = ScanOutputDir(output_dir);
    std::vector<ForeignEntry> refused;
    for (const ForeignEntry& e : contents.foreign) {
      if (overwrite || e.psaq_name) refused.push_back(e);
    }
    if (!refused.empty()) {
      throw std::runtime_error(
          output_dir + ": holds entries psaq did not write: " + ListForeign(refused) +
          (overwrite ? "; overwrite deletes only psaq's own files, so move these away first"
                     : "; this run would replace them, so move them away first"));
    }
    prepared.psaq_entries = contents.psaq;
  });
  prepared.has_checkpoint = checkpoint && !overwrite;
  prepared.overwrite = overwrite;
  return prepared;
}

void ClearOutputDir(const std::string& output_dir, const PreparedOutputDir& prepared,
                    dist::Communicator& comm, const c10::Device& device) {
  OnRankZero(comm, device, [&] {
    std::error_code ec;
    if (prepared.overwrite) {
      for (const std::string& entry : prepared.psaq_entries) {
        const fs::path p = fs::path(output_dir) / entry;
        fs::remove(p, ec);
        if (ec) throw std::runtime_error(p.string() + ": cannot remove: " + ec.message());
      }
    } else {
      fs::remove(ReportPath(output_dir), ec);  // a preempted run's report (psaq's: checked)
    }
  });
}

}  // namespace psaq::job
