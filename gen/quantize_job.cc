#include "gen/quantize_job.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>

#include "dist/logging.h"
#include "gen/calibration_sources.h"
#include "gen/collective_util.h"
#include "gen/output_dir.h"
#include "gen/sample_store.h"
#include "gen/v2_run.h"
#include "model/registry.h"
#include "model/state_dict.h"
#include "quant/calibration.h"
#include "quant/export.h"

namespace psaq::gen {
namespace {

// CRC-32 of the teacher's state dict (float32 bytes in state-dict order): the model's identity
// in the checkpoint's option check.
std::string WeightsChecksum(const model::VisionModel& m) {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (const auto& [name, t] : model::StateDict(m)) {
    at::Tensor c = t.detach().to(at::kCPU, at::kFloat).contiguous();
    crc = crc32(crc, reinterpret_cast<const Bytef*>(name.data()), static_cast<uInt>(name.size()));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(c.data_ptr()),
                static_cast<uInt>(c.numel() * static_cast<int64_t>(sizeof(float))));
  }
  return model::FormatChecksum(static_cast<uint32_t>(crc));
}

std::vector<at::Tensor> Chunks(const at::Tensor& images, int64_t batch_size) {
  std::vector<at::Tensor> out;
  for (int64_t i = 0; i < images.size(0); i += batch_size) {
    out.push_back(images.slice(0, i, std::min(i + batch_size, images.size(0))));
  }
  return out;
}

// Output SQNR and top-1 agreement of the quantized model against the float teacher, summed over
// ranks. Collective.
nlohmann::json CompareWithTeacher(model::VisionModel& teacher, quant::QuantizedModel& q,
                                  const std::vector<at::Tensor>& batches, JobContext& ctx) {
  at::NoGradGuard no_grad;
  std::vector<double> sums = {0, 0, 0, 0};  // signal, noise, agreements, samples
  for (const at::Tensor& x : batches) {
    at::Tensor ref = teacher.forward(x).to(at::kDouble);
    at::Tensor out = q.Forward(x).to(at::kDouble);
    sums[0] += ref.pow(2).sum().item<double>();
    sums[1] += (out - ref).pow(2).sum().item<double>();
    if (ref.dim() == 2 && ref.size(1) > 1) {
      sums[2] += (ref.argmax(1) == out.argmax(1)).sum().item<double>();
    }
    sums[3] += static_cast<double>(x.size(0));
  }
  at::Tensor t = at::tensor(sums, at::kDouble).to(CollectiveDevice(ctx.comm, ctx.device));
  ctx.comm.AllReduce(t, dist::ReduceOp::kSum);
  t = t.cpu();
  const double* v = t.data_ptr<double>();
  nlohmann::json m = {{"compared_samples", v[3]}};
  m["output_sqnr_db"] = v[1] > 0 ? 10 * std::log10(v[0] / v[1]) : 999.0;
  if (v[3] > 0) m["top1_agreement"] = v[2] / v[3];
  return m;
}

JobResult RunJob(const QuantizeJobOptions& in, dist::Communicator& comm, bool quantize) {
  const double start = NowSeconds();
  QuantizeJobOptions options = in;
  ValidateJobOptions(options);
  options.v1.batch_size = options.batch_size;
  options.v2.batch_size = options.batch_size;
  const std::string& out_dir = options.output_dir;
  const bool has_checkpoint = PrepareOutputDir(out_dir, options.resume, options.overwrite, comm);
  const bool generated =
      options.source == CalibrationSource::kV1 || options.source == CalibrationSource::kV2;

  PhaseTimers timers;
  ProgressReporter progress(comm.rank(), options.progress);
  JobContext ctx{comm,           c10::Device(options.device), nullptr, 0,
                 std::nullopt,   options.should_stop,         timers,  progress,
                 options.on_step};
  model::ModelPtr teacher;
  nlohmann::json checkpoint_options;
  {
    PhaseTimers::Scope timer(timers, "init");
    teacher = model::LoadModel(options.model, options.model_fallback_preset);
    teacher->eval();
    for (auto& p : teacher->parameters()) p.set_requires_grad(false);
    teacher->to(ctx.device);
    checkpoint_options = JobOptionsToJson(options, true);
    checkpoint_options["model_weights"] = WeightsChecksum(*teacher);
    if (comm.rank() == 0) {
      LOG(INFO) << "psaq " << (quantize ? "quantize" : "generate") << ": "
                << CalibrationSourceName(options.source) << " samples for "
                << teacher->config().name << " on " << comm.size() << " rank(s), device "
                << options.device;
    }
  }
  std::unique_ptr<CheckpointStore> store;
  if (generated && options.checkpoint_every >= 0) {
    store = std::make_unique<CheckpointStore>(CheckpointDir(out_dir), comm, checkpoint_options);
    ctx.checkpoint = store.get();
    ctx.checkpoint_every = options.checkpoint_every;
    if (has_checkpoint) ctx.resume = store->Read();
  }

  // Step 2: this rank's samples.
  ShardSamples samples;
  double work = 0;
  JobStatus status = JobStatus::kComplete;
  std::unique_ptr<quant::QuantizedModel> q;
  dist::GradSyncStats grad_sync;
  std::string method = MethodName(options.source);
  nlohmann::json outputs = nlohmann::json::object();
  const model::ModelConfig& config = teacher->config();
  switch (options.source) {
    case CalibrationSource::kV1: {
      V1RunResult r = RunV1Shard(*teacher, options.v1, options.seed, options.num_samples, ctx);
      status = r.status, samples = r.samples, work = r.work;
      break;
    }
    case CalibrationSource::kV2: {
      q = std::make_unique<quant::QuantizedModel>(model::CloneModel(*teacher), options.quant);
      V2RunResult r = RunV2Shard(*teacher, *q, options.v2, options.seed, options.num_samples, ctx);
      status = r.status, samples = r.samples, work = r.work, grad_sync = r.timings.grad_sync;
      break;
    }
    case CalibrationSource::kNoise:
      samples = NoiseShard(config, options.seed, options.num_samples, comm.size(), comm.rank(),
                           ctx.device);
      break;
    case CalibrationSource::kReal:
      samples = RealShard(options.real, config, options.seed, options.num_samples, comm.size(),
                          comm.rank(), ctx.device);
      break;
    case CalibrationSource::kSampleFiles: {
      SampleSet set;
      samples =
          SampleFileShard(options.sample_files, config, comm.size(), comm.rank(), ctx.device, &set);
      method = set.metadata.count("method") ? set.metadata.at("method") : "files";
      options.num_samples = std::stoll(set.metadata.at("num_samples"));
      outputs["samples"] = set.files;
      break;
    }
  }

  RunReportInput report;
  report.options = JobOptionsToJson(options, false);
  report.options["model_weights"] = checkpoint_options["model_weights"];
  report.options["method"] = method;
  auto finish = [&](JobStatus final_status) {
    report.status = JobStatusName(final_status);
    report.timers = timers;
    report.wall_seconds = NowSeconds() - start;
    report.work = work;
    report.comm_seconds = comm.seconds_in_collectives();
    report.grad_sync = grad_sync;
    if (final_status == JobStatus::kPreempted) outputs["checkpoint"] = CheckpointDir(out_dir);
    report.outputs = outputs;
    JobResult result;
    result.status = final_status;
    result.report = WriteRunReport(comm, ReportPath(out_dir), report, ctx.device);
    if (outputs.contains("model")) result.model_path = outputs["model"].get<std::string>();
    if (outputs.contains("samples") && options.source != CalibrationSource::kSampleFiles) {
      result.sample_files = outputs["samples"].get<std::vector<std::string>>();
    }
    return result;
  };
  if (status == JobStatus::kPreempted) {
    if (comm.rank() == 0)
      LOG(INFO) << "preempted: checkpoint written to " << CheckpointDir(out_dir);
    return finish(status);
  }

  // Step 3: the rank's shard.
  if (options.source != CalibrationSource::kSampleFiles) {
    PhaseTimers::Scope timer(timers, "sample_io");
    SampleShardInfo info{method,       options.num_samples,       comm.rank(),   comm.size(),
                         options.seed, checkpoint_options.dump(), options.model, {}};
    WriteSampleShard(SamplesDir(out_dir), samples.images, samples.indices, config, info);
    std::vector<std::string> shards;
    for (int r = 0; r < comm.size(); ++r) {
      shards.push_back(
          (std::filesystem::path(SamplesDir(out_dir)) / SampleShardName(r, comm.size())).string());
    }
    outputs["samples"] = shards;
  }

  if (quantize) {
    const std::vector<at::Tensor> batches = Chunks(samples.images, options.batch_size);
    {
      PhaseTimers::Scope timer(timers, "calibration");
      if (q == nullptr) {
        q = std::make_unique<quant::QuantizedModel>(teacher, options.quant);
        quant::Calibrate(*q, batches, &comm);
      }
      q->SetMode(quant::QuantizedModel::Mode::kQuantized);
    }
    report.metrics = CompareWithTeacher(*teacher, *q, batches, ctx);
    report.metrics["num_samples"] = options.num_samples;
    PhaseTimers::Scope timer(timers, "export");
    const std::string path = ModelPath(out_dir);
    if (comm.rank() == 0) {
      quant::ExportQuantizedModel(*q, path, {method, options.num_samples, "psaq"});
      LOG(INFO) << "exported " << quant::DescribeQuantConfig(options.quant) << " model to " << path
                << " (output SQNR " << report.metrics["output_sqnr_db"].get<double>()
                << " dB vs the float model on the samples)";
    }
    comm.Barrier();
    outputs["model"] = path;
    outputs["manifest"] = quant::ManifestPath(path);
  }
  JobResult result = finish(JobStatus::kComplete);
  if (store != nullptr) {
    if (comm.rank() == 0) {
      std::error_code ec;
      std::filesystem::remove_all(CheckpointDir(out_dir), ec);
    }
    comm.Barrier();
  }
  return result;
}

}  // namespace

JobResult RunQuantizeJob(const QuantizeJobOptions& options, dist::Communicator& comm) {
  return RunJob(options, comm, true);
}

JobResult RunGenerateJob(const QuantizeJobOptions& options, dist::Communicator& comm) {
  TORCH_CHECK(options.source != CalibrationSource::kSampleFiles,
              "generate: the 'files' source only makes sense for quantize");
  return RunJob(options, comm, false);
}

}  // namespace psaq::gen
