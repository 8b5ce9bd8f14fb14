#include "launch/job_command.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dist/logging.h"
#include "gen/output_dir.h"
#include "gen/progress.h"
#include "gen/quantize_job.h"
#include "launch/flags.h"
#include "launch/inputs.h"
#include "launch/output_file.h"
#include "launch/shared_flags.h"
#include "launch/stop_signal.h"
#include "quant/quant_config.h"
#include "quant/text_table.h"

DECLARE_string(method);
DECLARE_int64(num_samples);
DECLARE_int64(samples_per_batch);
DECLARE_string(output_dir);
DECLARE_bool(resume);
DECLARE_bool(overwrite);
DECLARE_int64(checkpoint_every);
DECLARE_string(sample_files);
DECLARE_bool(eval_float);
DECLARE_double(progress_seconds);
DECLARE_int32(w_bits);
DECLARE_int32(a_bits);
DECLARE_string(input_range);
DECLARE_int32(v1_epochs);
DECLARE_int32(v1_iterations);
DECLARE_int32(v1_warmup);
DECLARE_double(image_lr);
DECLARE_string(jitter_limits);
DECLARE_double(entropy_weight);
DECLARE_double(ce_weight);
DECLARE_double(tv_weight);
DECLARE_double(kde_bandwidth);
DECLARE_string(entropy_impl);
DECLARE_int32(v2_rounds);
DECLARE_int32(v2_sample_iterations);
DECLARE_int32(v2_image_warmup);
DECLARE_int32(v2_student_iterations);
DECLARE_int32(v2_warmup_iterations);
DECLARE_double(v2_adversarial_weight);
DECLARE_double(v2_student_lr);
DECLARE_string(v2_student_update);
DECLARE_bool(v2_train_biases);
DECLARE_bool(v2_train_norms);
DECLARE_bool(v2_recalibrate_each_round);
DECLARE_string(v2_discrepancy);
DECLARE_double(v2_temperature);
DECLARE_string(v2_image_schedule);

namespace psaq::launch {
namespace {

bool IsSet(const std::string& flag) { return !gflags::GetCommandLineFlagInfoOrDie(flag.c_str()).is_default; }

std::vector<int64_t> JitterLimits() {
  std::vector<int64_t> limits;
  for (const std::string& item : SplitFlagList(FLAGS_jitter_limits)) {
    size_t used = 0;
    int64_t v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < 0) {
      throw UsageError("--jitter_limits must be comma-separated pixel counts >= 0, got '" +
                       FLAGS_jitter_limits + "'");
    }
    limits.push_back(v);
  }
  return limits;
}

// Flags that only one method reads: giving them for another is a mistake worth a usage error.
void RefuseUnless(bool applies, const std::vector<std::string>& flags, const std::string& where) {
  if (applies) return;
  for (const std::string& flag : flags) {
    if (IsSet(flag)) throw UsageError("--" + flag + " applies to " + where + " only");
  }
}

const std::vector<std::string> kV1Flags = {"v1_epochs", "v1_iterations", "v1_warmup",
                                           "ce_weight"};
const std::vector<std::string> kV2Flags = {
    "v2_rounds",           "v2_sample_iterations",   "v2_student_iterations", "v2_image_warmup",
    "v2_warmup_iterations", "v2_adversarial_weight", "v2_student_lr",
    "v2_student_update",   "v2_train_biases",        "v2_train_norms",
    "v2_recalibrate_each_round", "v2_discrepancy",   "v2_temperature",
    "v2_image_schedule"};
const std::vector<std::string> kGenerationFlags = {"image_lr",       "jitter_limits",
                                                   "entropy_weight", "tv_weight",
                                                   "kde_bandwidth",  "entropy_impl"};

std::string Percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f%%", 100.0 * fraction);
  return buf;
}

// Top-1 of the float teacher and of the export on --eval_dataset; every rank.
nlohmann::json EvaluateBoth(ProcessContext& process, const std::string& export_path) {
  const auto dataset = OpenDataset(FLAGS_eval_dataset, FLAGS_dataset_dir, "test");
  quant::EvalOptions options;
  options.device = process.device();
  options.on_bad_image = quant::ParseBadImagePolicy(FLAGS_on_bad_image);
  nlohmann::json out = {{"dataset", dataset->Describe()}};
  std::vector<std::pair<std::string, std::string>> models = {{"quantized", export_path}};
  if (FLAGS_eval_float) models.insert(models.begin(), {"float", FLAGS_model});
  for (const auto& [key, path] : models) {
    LoadedModel model(path, process.device());
    const quant::EvalResult r =
        quant::Evaluate(process.device_comm(), model.forward(), *dataset, model.config(), options);
    out[key] = {{"top1", r.top1()}, {"top5", r.top5()}, {"images", r.images},
                {"seconds", r.seconds}};
  }
  return out;
}

void PrintSummary(JobKind kind, const gen::JobResult& result, const nlohmann::json& evaluation) {
  const nlohmann::json& rep = result.report;
  std::vector<std::pair<std::string, std::string>> table;
  const std::string bits = "W" + std::to_string(FLAGS_w_bits) + "/A" + std::to_string(FLAGS_a_bits);
  table.push_back({"method", rep["options"].value("method", FLAGS_method) +
                              (kind == JobKind::kQuantize ? " (" + bits + ")" : "")});
  table.push_back({"samples", std::to_string(FLAGS_num_samples) + " over " +
                               std::to_string(rep["world_size"].get<int>()) + " rank(s), " +
                               rep.value("backend", std::string("?"))});
  table.push_back({"wall time", gen::FormatDuration(rep["wall_seconds"].get<double>())});
  std::string phases;
  for (const auto& [name, phase] : rep["phases"].items()) {
    const double s = phase["max_seconds"].get<double>();
    if (s < 0.05) continue;
    phases += (phases.empty() ? "" : ", ") + name + " " + gen::FormatDuration(s);
  }
  table.push_back({"phases", phases});
  if (rep.contains("communication")) {
    table.push_back({"communication", Percent(rep["communication"]["share"].get<double>()) +
                                       " of the wall time"});
  }
  const nlohmann::json& m = rep["metrics"];
  if (m.contains("output_sqnr_db")) {
    table.push_back({"output SQNR", quant::FormatFixed(m["output_sqnr_db"].get<double>(), 2) +
                                     " dB vs the float model on the samples"});
  }
  if (m.contains("top1_agreement")) {
    table.push_back({"top-1 agreement", Percent(m["top1_agreement"].get<double>()) +
                                         " of the samples (quantized vs float)"});
  }
  if (!evaluation.is_null()) {
    const double q = evaluation["quantized"]["top1"].get<double>();
    const std::string on = " on " + evaluation["dataset"].get<std::string>();
    if (evaluation.contains("float")) {
      const double f = evaluation["float"]["top1"].get<double>();
      table.push_back({"top-1 float", Percent(f) + on});
      table.push_back({"top-1 quantized", Percent(q) + " (" + (q >= f ? "+" : "") +
                                              quant::FormatFixed(100.0 * (q - f), 2) + " points)"});
    } else {
      table.push_back({"top-1 quantized", Percent(q) + on});
    }
  }
  if (!result.model_path.empty()) table.push_back({"model", result.model_path});
  table.push_back({"samples in", gen::SamplesDir(FLAGS_output_dir)});
  table.push_back({"report", gen::ReportPath(FLAGS_output_dir)});
  std::printf("\npsaq %s: complete\n%s", kind == JobKind::kQuantize ? "quantize" : "generate",
              quant::RenderFields(table, 2).c_str());
  std::fflush(stdout);
}

}  // namespace

void CheckJobFlags(JobKind kind) {
  if (FLAGS_model.empty()) throw UsageError("--model is required");
  if (FLAGS_output_dir.empty()) throw UsageError("--output_dir is required");
  if (FLAGS_resume && FLAGS_overwrite) {
    throw UsageError("--resume and --overwrite exclude each other");
  }
  const std::string& method = FLAGS_method;
  if (method == "files") {
    if (kind == JobKind::kGenerate) {
      throw UsageError("--method=files reads samples; it applies to psaq quantize only");
    }
    if (FLAGS_sample_files.empty()) throw UsageError("--method=files needs --sample_files");
    if (IsSet("num_samples")) {
      throw UsageError("--num_samples does not apply to --method=files (the files' count is used)");
    }
  } else if (!FLAGS_sample_files.empty()) {
    throw UsageError("--sample_files applies to --method=files only");
  }
  if (method == "real" && FLAGS_dataset.empty()) {
    throw UsageError("--method=real needs --dataset (the training images to calibrate on)");
  }
  RefuseUnless(method == "real", {"dataset", "dataset_dir", "split"}, "--method=real");
  RefuseUnless(method == "v1", kV1Flags, "--method=v1");
  RefuseUnless(method == "v2", kV2Flags, "--method=v2");
  RefuseUnless(method == "v1" || method == "v2", kGenerationFlags, "--method=v1|v2");
  RefuseUnless(kind == JobKind::kQuantize || method == "v2",
               {"w_bits", "a_bits", "input_range"}, "psaq quantize and the student of --method=v2");
  RefuseUnless(kind == JobKind::kQuantize, {"eval_dataset"}, "psaq quantize");
  RefuseUnless(!FLAGS_eval_dataset.empty(), {"eval_float"}, "--eval_dataset");
  if (FLAGS_v1_warmup > FLAGS_v1_iterations) {
    throw UsageError("--v1_warmup (" + std::to_string(FLAGS_v1_warmup) +
                     ") must not exceed --v1_iterations (" + std::to_string(FLAGS_v1_iterations) +
                     ")");
  }
  const int64_t period = FLAGS_v2_image_schedule == "per_round"
                             ? FLAGS_v2_sample_iterations
                             : int64_t{FLAGS_v2_sample_iterations} * FLAGS_v2_rounds;
  if (method == "v2" && FLAGS_v2_image_warmup > period) {
    throw UsageError("--v2_image_warmup (" + std::to_string(FLAGS_v2_image_warmup) +
                     ") must not exceed the image schedule's length (" + std::to_string(period) +
                     " steps with --v2_image_schedule=" + FLAGS_v2_image_schedule + ")");
  }
  const std::vector<int64_t> limits = JitterLimits();
  if (method == "v2" && limits.size() > 1) {
    throw UsageError("--jitter_limits takes one value with --method=v2 (its rounds have no epochs)");
  }
}

gen::QuantizeJobOptions JobOptionsFromFlags(const ProcessContext& process) {
  gen::QuantizeJobOptions o;
  o.model = FLAGS_model;
  o.source = gen::ParseCalibrationSource(FLAGS_method);
  o.sample_files = SplitFlagList(FLAGS_sample_files);
  o.num_samples = FLAGS_num_samples;
  o.batch_size = FLAGS_samples_per_batch;
  o.seed = FLAGS_seed;
  o.quant.weight_bits = FLAGS_w_bits;
  o.quant.act_bits = FLAGS_a_bits;
  o.quant.input_range = quant::ParseInputRange(FLAGS_input_range);
  o.output_dir = FLAGS_output_dir;
  o.resume = FLAGS_resume;
  o.overwrite = FLAGS_overwrite;
  o.checkpoint_every = FLAGS_checkpoint_every;
  o.device = process.device().str();
  o.progress.interval_seconds = FLAGS_progress_seconds;

  gen::KdeOptions kde;
  kde.bandwidth = FLAGS_kde_bandwidth;
  kde.implementation = FLAGS_entropy_impl == "fused" ? gen::KdeImplementation::kFused
                                                     : gen::KdeImplementation::kReference;
  const std::vector<int64_t> limits = JitterLimits();

  o.v1.epochs = FLAGS_v1_epochs;
  o.v1.iterations_per_epoch = FLAGS_v1_iterations;
  o.v1.warmup_iterations = FLAGS_v1_warmup;
  o.v1.lr = FLAGS_image_lr;
  o.v1.jitter_limits = limits;
  o.v1.weights.entropy = FLAGS_entropy_weight;
  o.v1.weights.cross_entropy = FLAGS_ce_weight;
  o.v1.weights.tv = FLAGS_tv_weight;
  o.v1.kde = kde;

  o.v2.rounds = FLAGS_v2_rounds;
  o.v2.sample_iterations = FLAGS_v2_sample_iterations;
  o.v2.student_iterations = FLAGS_v2_student_iterations;
  o.v2.warmup_iterations = FLAGS_v2_warmup_iterations;
  o.v2.image_lr = FLAGS_image_lr;
  o.v2.image_schedule = gen::ParseImageSchedule(FLAGS_v2_image_schedule);
  o.v2.image_warmup = FLAGS_v2_image_warmup;
  o.v2.weights.entropy = FLAGS_entropy_weight;
  o.v2.weights.tv = FLAGS_tv_weight;
  o.v2.weights.adversarial = FLAGS_v2_adversarial_weight;
  o.v2.discrepancy.kind = gen::ParseDiscrepancyKind(FLAGS_v2_discrepancy);
  o.v2.discrepancy.temperature = FLAGS_v2_temperature;
  if (!limits.empty()) o.v2.jitter_limit = limits.front();
  o.v2.kde = kde;
  o.v2.student_update = gen::ParseStudentUpdate(FLAGS_v2_student_update);
  o.v2.student_parameters.biases = FLAGS_v2_train_biases;
  o.v2.student_parameters.norms = FLAGS_v2_train_norms;
  o.v2.student_lr = FLAGS_v2_student_lr;
  o.v2.recalibrate_each_round = FLAGS_v2_recalibrate_each_round;

  if (!FLAGS_dataset.empty()) o.real.dataset = FLAGS_dataset;
  o.real.dataset_dir = FLAGS_dataset_dir;
  o.real.split = IsSet("split") ? FLAGS_split : "train";  // PSAQ calibrates on training images
  gen::ValidateJobOptions(o);
  return o;
}

int RunJobCommand(ProcessContext& process, JobKind kind) {
  InstallStopSignalHandlers();
  gen::QuantizeJobOptions options = JobOptionsFromFlags(process);
  options.should_stop = [] { return StopRequested(); };
  if (process.is_root() && kind == JobKind::kQuantize && !FLAGS_eval_dataset.empty()) {
    // Fail now, not after the generation, when the evaluation images are missing.
    OpenDataset(FLAGS_eval_dataset, FLAGS_dataset_dir, "test");
  }
  dist::Communicator& comm = process.device_comm();
  const gen::JobResult result = kind == JobKind::kQuantize ? gen::RunQuantizeJob(options, comm)
                                                           : gen::RunGenerateJob(options, comm);
  if (result.status == gen::JobStatus::kPreempted) {
    if (process.is_root()) {
      LOG(WARNING) << "stopped on request (signal " << StopSignal() << " on some rank): the "
                   << "checkpoint is in " << gen::CheckpointDir(FLAGS_output_dir)
                   << "; run the same command with --resume to continue (exit status "
                   << kPreemptedExitCode << ")";
    }
    return kPreemptedExitCode;
  }
  nlohmann::json evaluation;
  if (kind == JobKind::kQuantize && !FLAGS_eval_dataset.empty()) {
    // The job's report already says "complete" (the model is); until the evaluation is in it,
    // the report says that it is running, so a run stopped during it does not read as evaluated.
    const auto write_report = [&](const nlohmann::json& eval) {
      if (!process.is_root()) return;
      nlohmann::json report = result.report;
      report["evaluation"] = eval;
      WriteFileAtomically(gen::ReportPath(FLAGS_output_dir), report.dump(1) + "\n");
    };
    write_report({{"status", "running"}, {"dataset", FLAGS_eval_dataset}});
    evaluation = EvaluateBoth(process, result.model_path);
    evaluation["status"] = "complete";
    write_report(evaluation);
  }
  if (process.is_root()) PrintSummary(kind, result, evaluation);
  return 0;
}

}  // namespace psaq::launch
