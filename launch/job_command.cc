#include "launch/job_command.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "dist/base/format.h"
#include "dist/base/text_table.h"
#include "dist/logging.h"
#include "launch/job/output_dir.h"
#include "launch/job/quantize_job.h"
#include "launch/stop_signal.h"
#include "quant/quant_config.h"

namespace psaq::launch {
namespace {

std::string Percent(double fraction) { return base::FormatFixed(100.0 * fraction, 2) + "%"; }

// The phases that took at least 0.05 s, "generation 1m02s, calibration 3.1s".
std::string Phases(const nlohmann::json& phases) {
  std::string text;
  for (const auto& [name, phase] : phases.items()) {
    const double s = phase["max_seconds"].get<double>();
    if (s < 0.05) continue;
    text += (text.empty() ? "" : ", ") + name + " " + base::FormatSeconds(s);
  }
  return text;
}

// The top-1 lines of the evaluation report.json holds.
void AddTop1(const nlohmann::json& evaluation,
             std::vector<std::pair<std::string, std::string>>& table) {
  // A detector's evaluation: box and mask AP (fractions, printed as pycocotools does).
  if (evaluation["quantized"].contains("box_ap")) {
    const std::string on = " on " + evaluation["dataset"].get<std::string>();
    for (const char* key : {"float", "quantized"}) {
      if (!evaluation.contains(key)) continue;
      const nlohmann::json& r = evaluation[key];
      table.push_back({std::string("box/mask AP ") + key,
                       base::FormatFixed(r["box_ap"].get<double>(), 3) + " / " +
                           base::FormatFixed(r["mask_ap"].get<double>(), 3) + on});
    }
    return;
  }
  const double q = evaluation["quantized"]["top1"].get<double>();
  const std::string on = " on " + evaluation["dataset"].get<std::string>();
  if (!evaluation.contains("float")) {
    table.push_back({"top-1 quantized", Percent(q) + on});
    return;
  }
  const double f = evaluation["float"]["top1"].get<double>();
  table.push_back({"top-1 float", Percent(f) + on});
  table.push_back({"top-1 quantized", Percent(q) + " (" + (q >= f ? "+" : "") +
                                          base::FormatFixed(100.0 * (q - f), 2) + " points)"});
}

// Rank 0's closing table, read from the report (the one record of the run).
void PrintSummary(JobKind kind, const job::QuantizeJobOptions& options,
                  const job::JobResult& result) {
  const nlohmann::json& rep = result.report;
  std::vector<std::pair<std::string, std::string>> table;
  std::string bits =
      "W" + std::to_string(options.quant.weight_bits) + "/A" + std::to_string(options.quant.act_bits);
  if (!options.quant.bits_overrides.empty()) {
    bits += " with " + quant::BitsOverridesName(options.quant.bits_overrides);
  }
  bits += quant::DescribeQuantMethod(options.quant);
  table.push_back({"method", rep["options"].value("method", std::string("?")) +
                                 (kind == JobKind::kQuantize ? " (" + bits + ")" : "")});
  table.push_back({"samples", std::to_string(rep["options"]["num_samples"].get<int64_t>()) +
                                  " over " + std::to_string(rep["world_size"].get<int>()) +
                                  " rank(s), " + rep.value("backend", std::string("?"))});
  table.push_back({"wall time", base::FormatSeconds(rep["wall_seconds"].get<double>())});
  table.push_back({"phases", Phases(rep["phases"])});
  if (rep.contains("communication")) {
    table.push_back({"communication",
                     Percent(rep["communication"]["share"].get<double>()) + " of the wall time"});
  }
  const nlohmann::json& m = rep["metrics"];
  if (m.value("real_images_skipped", int64_t{0}) > 0) {
    table.push_back(
        {"skipped images",
         base::FormatCount(m["real_images_skipped"].get<int64_t>()) +
             " that do not decode (--on_bad_image=skip; later images took their place)"});
  }
  if (m.contains("output_sqnr_db")) {
    table.push_back({"output SQNR", base::FormatFixed(m["output_sqnr_db"].get<double>(), 2) +
                                        " dB vs the float model on the samples"});
  }
  if (m.contains("fpn_sqnr_db")) {
    table.push_back({"FPN SQNR", base::FormatFixed(m["fpn_sqnr_db"].get<double>(), 2) +
                                     " dB vs the float detector on the samples"});
  }
  if (m.contains("top1_agreement")) {
    table.push_back({"top-1 agreement", Percent(m["top1_agreement"].get<double>()) +
                                            " of the samples (quantized vs float)"});
  }
  if (rep.contains("evaluation")) AddTop1(rep["evaluation"], table);
  if (!result.model_path.empty()) table.push_back({"model", result.model_path});
  table.push_back({"samples in", job::SamplesDir(options.output_dir)});
  table.push_back({"report", job::ReportPath(options.output_dir)});
  std::printf("\npsaq %s: complete\n%s", kind == JobKind::kQuantize ? "quantize" : "generate",
              base::RenderFields(table, 2).c_str());
  std::fflush(stdout);
}

}  // namespace

int RunJobCommand(ProcessContext& process, JobKind kind) {
  InstallStopSignalHandlers();
  job::QuantizeJobOptions options = JobOptionsFromFlags(kind, process.device().str());
  options.should_stop = [] { return StopRequested(); };
  dist::Communicator& comm = process.device_comm();
  const job::JobResult result = kind == JobKind::kQuantize ? job::RunQuantizeJob(options, comm)
                                                           : job::RunGenerateJob(options, comm);
  if (result.status == job::JobStatus::kPreempted) {
    if (process.is_root()) {
      LOG(WARNING) << "stopped on request (signal " << StopSignal() << " on some rank): the "
                   << "checkpoint is in " << job::CheckpointDir(options.output_dir)
                   << "; run the same command with --resume to continue (exit status "
                   << kPreemptedExitCode << ")";
    }
    return kPreemptedExitCode;
  }
  if (process.is_root()) PrintSummary(kind, options, result);
  return 0;
}

}  // namespace psaq::launch
