#include "launch/job/output_dir.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "dist/base/atomic_file.h"

namespace psaq::job {
namespace fs = std::filesystem;

std::string SamplesDir(const std::string& d) { return (fs::path(d) / "samples").string(); }
std::string CheckpointDir(const std::string& d) { return (fs::path(d) / "checkpoint").string(); }
std::string ModelPath(const std::string& d) { return (fs::path(d) / "model.safetensors").string(); }
std::string ReportPath(const std::string& d) { return (fs::path(d) / "report.json").string(); }

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

bool PrepareOutputDir(const std::string& output_dir, bool resume, bool overwrite,
                      dist::Communicator& comm) {
  const bool finished = IsFinishedRun(output_dir);
  const bool checkpoint = fs::exists(fs::path(CheckpointDir(output_dir)) / "state.json");
  if (fs::exists(output_dir) && !fs::is_directory(output_dir)) {
    throw std::runtime_error(output_dir + ": the output path exists and is not a directory");
  }
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
  comm.Barrier();  // everyone has looked before rank 0 changes anything
  if (comm.rank() == 0) {
    std::error_code ec;
    if (overwrite) {
      for (const std::string& p :
           {SamplesDir(output_dir), CheckpointDir(output_dir), ModelPath(output_dir),
            ReportPath(output_dir), (fs::path(output_dir) / "model.manifest.json").string()}) {
        fs::remove_all(p, ec);
        if (ec) throw std::runtime_error(p + ": cannot remove: " + ec.message());
      }
    } else {
      fs::remove(ReportPath(output_dir), ec);  // a preempted run's report
    }
    base::MakeDirs(output_dir);
  }
  comm.Barrier();
  return checkpoint && !overwrite;
}

}  // namespace psaq::job
