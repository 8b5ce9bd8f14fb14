#include "launch/job/quantize_job.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <sys/resource.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>

#include "dist/base/atomic_file.h"
#include "dist/collective_util.h"
#include "dist/logging.h"
#include "dist/partition.h"
#include "gen/detector_v1.h"
#include "gen/detector_v2_models.h"
#include "launch/job/calibration_sources.h"
#include "launch/job/detector_sources.h"
#include "launch/job/output_dir.h"
#include "launch/job/sample_store.h"
#include "launch/job/v2_run.h"
#include "model/data/coco_dataset.h"
#include "model/data/dataset_by_name.h"
#include "model/detect/load_detector.h"
#include "model/registry.h"
#include "model/state_dict.h"
#include "quant/calibration.h"
#include "quant/evaluate.h"
#include "quant/evaluate_detector.h"
#include "quant/export.h"
#include "quant/tap_quantizers.h"

namespace psaq::job {
namespace {

// CRC-32 of the teacher's state dict (float32 bytes in state-dict order): the model's identity
// in the checkpoint's option check.
std::string WeightsChecksum(const torch::nn::Module& m) {
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
  at::Tensor t = at::tensor(sums, at::kDouble).to(dist::CollectiveDevice(ctx.comm, ctx.device));
  ctx.comm.AllReduce(t, dist::ReduceOp::kSum);
  t = t.cpu();
  const double* v = t.data_ptr<double>();
  nlohmann::json m = {{"compared_samples", v[3]}};
  m["output_sqnr_db"] = v[1] > 0 ? 10 * std::log10(v[0] / v[1]) : 999.0;
  if (v[3] > 0) m["top1_agreement"] = v[2] / v[3];
  return m;
}

// Top-1 of the float teacher (in memory) and of the export as written (re-imported, so the number
// is that of the file users get) on options.eval. Collective.
nlohmann::json EvaluateTeacherAndExport(const QuantizeJobOptions& options,
                                        model::VisionModel& teacher, const std::string& export_path,
                                        JobContext& ctx) {
  const auto dataset =
      model::OpenImageDataset(options.eval.dataset, options.eval.dataset_dir, "test");
  quant::EvalOptions eval;
  eval.device = ctx.device;
  eval.on_bad_image = options.eval.on_bad_image;
  quant::ImportedModel exported = quant::ImportQuantizedModel(export_path);
  exported.model->model_ptr()->to(ctx.device);
  exported.model->model_ptr()->eval();
  std::vector<std::pair<std::string, quant::ForwardFn>> models;
  if (options.eval.evaluate_float) {
    models.push_back({"float", [&](const at::Tensor& x) { return teacher.forward(x); }});
  }
  quant::QuantizedModel* q = exported.model.get();
  models.push_back({"quantized", [q](const at::Tensor& x) { return q->Forward(x); }});
  nlohmann::json out = {{"dataset", dataset->Describe()}};
  for (const auto& [key, forward] : models) {
    const quant::EvalResult r =
        quant::Evaluate(ctx.comm, forward, *dataset, teacher.config(), eval);
    out[key] = {
        {"top1", r.top1()}, {"top5", r.top5()}, {"images", r.images}, {"seconds", r.seconds}};
  }
  out["status"] = "complete";
  return out;
}

// The detector's FPN features against the float detector's on the samples: output SQNR over
// every level, summed over ranks. Collective.
nlohmann::json CompareDetectorWithTeacher(detect::MaskRcnn& teacher, quant::QuantizedDetector& q,
                                          const std::vector<at::Tensor>& batches,
                                          JobContext& ctx) {
  at::NoGradGuard no_grad;
  std::vector<double> sums = {0, 0, 0};  // signal, noise, samples
  for (const at::Tensor& x : batches) {
    const detect::DetectorOutputs ref = teacher.forward(x);
    const detect::DetectorOutputs out = q.Forward(x);
    for (size_t l = 0; l < ref.fpn.size(); ++l) {
      const at::Tensor r = ref.fpn[l].to(at::kDouble);
      sums[0] += r.pow(2).sum().item<double>();
      sums[1] += (out.fpn[l].to(at::kDouble) - r).pow(2).sum().item<double>();
    }
    sums[2] += static_cast<double>(x.size(0));
  }
  at::Tensor t = at::tensor(sums, at::kDouble).to(dist::CollectiveDevice(ctx.comm, ctx.device));
  ctx.comm.AllReduce(t, dist::ReduceOp::kSum);
  t = t.cpu();
  const double* v = t.data_ptr<double>();
  nlohmann::json m = {{"compared_samples", v[2]}};
  m["fpn_sqnr_db"] = v[1] > 0 ? 10 * std::log10(v[0] / v[1]) : 999.0;
  return m;
}

// The largest peak resident set size of any rank so far, MiB. Collective.
double PeakRssMb(JobContext& ctx) {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  at::Tensor t = at::tensor(std::vector<double>{static_cast<double>(usage.ru_maxrss) / 1024.0},
                            at::kDouble)
                     .to(dist::CollectiveDevice(ctx.comm, ctx.device));
  ctx.comm.AllReduce(t, dist::ReduceOp::kMax);
  return t.cpu().item<double>();
}

nlohmann::json DetectorEvalJson(const quant::DetectorEvalResult& r) {
  return {{"box_ap", r.box.stats[0]},   {"mask_ap", r.segm.stats[0]},
          {"box_stats", r.box.stats},   {"mask_stats", r.segm.stats},
          {"images", r.images},         {"seconds", r.seconds},
          {"peak_rss_mb", r.peak_rss_mb}};
}

// Box and mask AP of the float detector (in memory) and of the export as written (re-imported,
// as psaq eval reads it) on options.eval (a COCO instances JSON). Collective.
nlohmann::json EvaluateDetectorAndExport(const QuantizeJobOptions& options,
                                         detect::MaskRcnn& teacher, const std::string& export_path,
                                         JobContext& ctx) {
  data::CocoOptions coco;
  coco.on_bad_entry = options.eval.on_bad_image == quant::BadImagePolicy::kSkip
                          ? data::BadEntryPolicy::kSkip
                          : data::BadEntryPolicy::kFail;
  const auto dataset = model::OpenDetectionDataset(options.eval.dataset, "", coco);
  quant::DetectorEvalOptions eval;
  eval.device = ctx.device;
  eval.on_bad_image = options.eval.on_bad_image;
  nlohmann::json out = {{"dataset", dataset->Describe()}};
  if (options.eval.evaluate_float) {
    out["float"] = DetectorEvalJson(quant::EvaluateDetector(ctx.comm, teacher, *dataset, eval));
  }
  quant::ImportedDetector exported = quant::ImportQuantizedDetector(export_path);
  exported.detector->detector().to(ctx.device);
  out["quantized"] =
      DetectorEvalJson(quant::EvaluateDetector(ctx.comm, *exported.detector, *dataset, eval));
  out["status"] = "complete";
  return out;
}

// --overwrite would delete the samples a --method=files run is about to read when they lie in
// the output directory it replaces: refuse, naming the file.
void RefuseInputsInside(const std::vector<std::string>& inputs, const std::string& output_dir) {
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::weakly_canonical(output_dir, ec);
  if (ec) return;  // a directory that cannot be resolved holds nothing yet
  for (const std::string& input : inputs) {
    const std::filesystem::path p = std::filesystem::weakly_canonical(input, ec);
    if (ec) continue;
    const auto [end, rest] = std::mismatch(dir.begin(), dir.end(), p.begin(), p.end());
    if (end == dir.end()) {
      throw std::runtime_error("--sample_files=" + input + ": lies inside --output_dir=" +
                               output_dir + ", which --overwrite would delete before reading it");
    }
  }
}

// One run of RunQuantizeJob/RunGenerateJob, as the steps of quantize_job.h.
class Job {
 public:
  Job(const QuantizeJobOptions& in, dist::Communicator& comm, bool quantize)
      : start_(NowSeconds()),
        options_(Normalised(in)),
        comm_(comm),
        quantize_(quantize),
        progress_(comm.rank(), options_.progress),
        ctx_{comm,
             c10::Device(options_.device),
             nullptr,
             0,
             std::nullopt,
             options_.should_stop,
             timers_,
             progress_,
             options_.on_step} {}

  JobResult Run() {
    // The directory is claimed (checked, locked, scanned) first, so a second job is refused at
    // once; nothing in it changes until every other input has been checked (an --overwrite
    // removes the previous run).
    const std::string& out_dir = options_.output_dir;
    output_ = PrepareOutputDir(out_dir, options_.resume, options_.overwrite, options_.command,
                               comm_, ctx_.device);
    detector_job_ = detect::IsDetectorFile(options_.model);
    if (!options_.eval.dataset.empty()) {
      // Fail now, not after the generation, when the evaluation images are missing.
      if (detector_job_) {
        model::OpenDetectionDataset(options_.eval.dataset, "");
      } else {
        model::OpenImageDataset(options_.eval.dataset, options_.eval.dataset_dir, "test");
      }
    }
    if (options_.overwrite) RefuseInputsInside(options_.sample_files, out_dir);
    const int64_t memory =
        options_.memory_bytes > 0 ? options_.memory_bytes : PhysicalMemoryBytes();
    // The image size is known now: refuse a sample count that cannot fit, before making any.
    if (detector_job_) {
      LoadDetectorTeacher();
      // Noise, V1 and V2 samples have the side --image_size (V1's generation batch is counted at
      // that size too, an overestimate); real images' side comes from the images, and files
      // bring their own count.
      if (options_.source != CalibrationSource::kReal &&
          options_.source != CalibrationSource::kSampleFiles) {
        const detect::DetectorConfig& config = detector_->config();
        CheckSampleMemory(options_, comm_.size(),
                          gen::DetectorImageConfig(config, DetectorImageSize(options_, config)),
                          memory);
      }
    } else {
      LoadTeacher();
      CheckSampleMemory(options_, comm_.size(), teacher_->config(), memory);
    }
    ClearOutputDir(out_dir, output_, comm_, ctx_.device);
    const bool has_checkpoint = output_.has_checkpoint;
    OpenCheckpoints(has_checkpoint);
    const JobStatus status = detector_job_ ? ProduceDetectorSamples() : ProduceSamples();
    report_.options = JobOptionsToJson(options_, false);
    if (detector_job_) {
      report_.options["quant_scope"] = quant::DetectorScopeName(options_.quant_scope);
      report_.options["image_size"] = image_size_;
      for (const char* key : {"detector_discrepancy", "v1_teacher", "v1_teacher_weights"}) {
        if (checkpoint_options_.contains(key)) report_.options[key] = checkpoint_options_[key];
      }
    }
    report_.options["model_weights"] = checkpoint_options_["model_weights"];
    report_.options["method"] = method_;
    if (status == JobStatus::kPreempted) {
      if (comm_.rank() == 0)
        LOG(INFO) << "preempted: checkpoint written to " << CheckpointDir(out_dir);
      return Finish(status);
    }
    WriteShard();
    if (quantize_) detector_job_ ? QuantizeAndExportDetector() : QuantizeAndExport();
    if (detector_job_) report_.metrics["peak_rss_mb"] = PeakRssMb(ctx_);
    JobResult result = Finish(JobStatus::kComplete);
    if (store_ != nullptr) {  // the run is complete: its checkpoint has served
      if (comm_.rank() == 0) RemoveCheckpoint(out_dir);
      comm_.Barrier();
    }
    if (quantize_ && !options_.eval.dataset.empty()) Evaluate(result);
    return result;
  }

 private:
  static QuantizeJobOptions Normalised(const QuantizeJobOptions& in) {
    QuantizeJobOptions options = in;
    ValidateJobOptions(options);
    options.v1.batch_size = options.batch_size;
    options.v2.batch_size = options.batch_size;
    return options;
  }

  // Step 1: the frozen float teacher on the device, and the options a checkpoint must match.
  void LoadTeacher() {
    PhaseTimers::Scope timer(timers_, "init");
    teacher_ = model::LoadModel(options_.model, options_.model_fallback_preset);
    teacher_->eval();
    for (auto& p : teacher_->parameters()) p.set_requires_grad(false);
    teacher_->to(ctx_.device);
    // Before any sample is made: a misnamed override would otherwise fail only at calibration.
    quant::CheckBitsOverrides(teacher_->taps(), options_.quant.bits_overrides,
                              teacher_->config().name);
    checkpoint_options_ = JobOptionsToJson(options_, true);
    checkpoint_options_["model_weights"] = WeightsChecksum(*teacher_);
    method_ = MethodName(options_.source);
    if (comm_.rank() == 0) {
      LOG(INFO) << "psaq " << (quantize_ ? "quantize" : "generate") << ": "
                << CalibrationSourceName(options_.source) << " samples for "
                << teacher_->config().name << " on " << comm_.size() << " rank(s), device "
                << options_.device;
    }
  }

  // Only generated samples are checkpointed (the other sources are cheap to redo).
  void OpenCheckpoints(bool has_checkpoint) {
    const bool generated =
        options_.source == CalibrationSource::kV1 || options_.source == CalibrationSource::kV2;
    if (!generated || options_.checkpoint_every < 0) return;
    store_ = std::make_unique<CheckpointStore>(CheckpointDir(options_.output_dir), comm_,
                                               checkpoint_options_);
    ctx_.checkpoint = store_.get();
    ctx_.checkpoint_every = options_.checkpoint_every;
    if (has_checkpoint) ctx_.resume = store_->Read();
  }

  // Step 2: this rank's samples (V2 also evolves the student, which becomes the export).
  JobStatus ProduceSamples() {
    const model::ModelConfig& config = teacher_->config();
    JobStatus status = JobStatus::kComplete;
    switch (options_.source) {
      case CalibrationSource::kV1: {
        V1RunResult r =
            RunV1Shard(*teacher_, options_.v1, options_.seed, options_.num_samples, ctx_);
        status = r.status, samples_ = r.samples, report_.work = r.work;
        break;
      }
      case CalibrationSource::kV2: {
        q_ = std::make_unique<quant::QuantizedModel>(model::CloneModel(*teacher_), options_.quant);
        V2RunResult r =
            RunV2Shard(*teacher_, *q_, options_.v2, options_.seed, options_.num_samples, ctx_);
        status = r.status, samples_ = r.samples, report_.work = r.work;
        report_.grad_sync = r.timings.grad_sync;
        break;
      }
      case CalibrationSource::kNoise:
        samples_ = NoiseShard(config, options_.seed, options_.num_samples, comm_.size(),
                              comm_.rank(), ctx_.device);
        break;
      case CalibrationSource::kReal:
        samples_ = RealShard(options_.real, config, options_.seed, options_.num_samples,
                             comm_.size(), comm_.rank(), ctx_.device);
        if (options_.real.on_bad_image == quant::BadImagePolicy::kSkip) CountSkippedImages();
        break;
      case CalibrationSource::kSampleFiles: {
        SampleSet set;
        samples_ = SampleFileShard(options_.sample_files, config, comm_.size(), comm_.rank(),
                                   ctx_.device, &set);
        method_ = set.metadata.count("method") ? set.metadata.at("method") : "files";
        options_.num_samples = std::stoll(set.metadata.at("num_samples"));
        report_.outputs["samples"] = set.files;
        break;
      }
    }
    return status;
  }

  // The real images skipped on every rank, in the report (and a line on rank 0). Collective.
  void CountSkippedImages() {
    at::Tensor t = at::tensor(std::vector<int64_t>{samples_.skipped}, at::kLong)
                       .to(dist::CollectiveDevice(comm_, ctx_.device));
    comm_.AllReduce(t, dist::ReduceOp::kSum);
    const int64_t skipped = t.cpu().item<int64_t>();
    report_.metrics["real_images_skipped"] = skipped;
    if (comm_.rank() == 0 && skipped > 0) {
      LOG(WARNING) << "skipped " << skipped << " real image(s) that do not decode; each sample "
                   << "took the next decodable image of the seeded order instead";
    }
  }

  // Step 3: the rank's shard (an earlier run's files are not copied).
  void WriteShard() {
    if (options_.source == CalibrationSource::kSampleFiles) return;
    PhaseTimers::Scope timer(timers_, "sample_io");
    const std::string dir = SamplesDir(options_.output_dir);
    SampleShardInfo info{method_,       options_.num_samples,       comm_.rank(),   comm_.size(),
                         options_.seed, checkpoint_options_.dump(), options_.model, {}};
    if (detector_job_) {
      WriteSampleShard(dir, samples_.images, samples_.indices,
                       detect::DetectorConfigToMetadata(detector_->config()), info);
    } else {
      WriteSampleShard(dir, samples_.images, samples_.indices, teacher_->config(), info);
    }
    std::vector<std::string> shards;
    for (int r = 0; r < comm_.size(); ++r) {
      shards.push_back((std::filesystem::path(dir) / SampleShardName(r, comm_.size())).string());
    }
    report_.outputs["samples"] = shards;
  }

  // Steps 4-5: calibrate (V2: the student keeps its own ranges), compare with the teacher on the
  // samples, rank 0 exports.
  void QuantizeAndExport() {
    const std::vector<at::Tensor> batches = Chunks(samples_.images, options_.batch_size);
    {
      PhaseTimers::Scope timer(timers_, "calibration");
      if (q_ == nullptr) {
        // RepQ rewrites the model's LayerNorm and Linear parameters: on a copy, so that the
        // teacher it is compared with below stays the float model as loaded.
        q_ = std::make_unique<quant::QuantizedModel>(
            options_.quant.quantizer == quant::QuantizerKind::kRepq ? model::CloneModel(*teacher_)
                                                                    : teacher_,
            options_.quant);
        quant::Calibrate(*q_, batches, &comm_);
      }
      q_->SetMode(quant::QuantizedModel::Mode::kQuantized);
    }
    report_.metrics.update(CompareWithTeacher(*teacher_, *q_, batches, ctx_));
    report_.metrics["num_samples"] = options_.num_samples;
    PhaseTimers::Scope timer(timers_, "export");
    const std::string path = ModelPath(options_.output_dir);
    if (comm_.rank() == 0) {
      quant::ExportQuantizedModel(*q_, path, {method_, options_.num_samples, "psaq"});
      LOG(INFO) << "exported " << quant::DescribeQuantConfig(options_.quant) << " model to " << path
                << " (output SQNR " << report_.metrics["output_sqnr_db"].get<double>()
                << " dB vs the float model on the samples)";
    }
    comm_.Barrier();
    report_.outputs["model"] = path;
    report_.outputs["manifest"] = quant::ManifestPath(path);
  }

  // Step 1 for a detector file: the frozen float detector on the device.
  void LoadDetectorTeacher() {
    PhaseTimers::Scope timer(timers_, "init");
    detector_ = detect::LoadDetector(options_.model);
    detector_->eval();
    for (auto& p : detector_->parameters()) p.set_requires_grad(false);
    detector_->to(ctx_.device);
    quant::CheckBitsOverrides(detector_->taps(), options_.quant.bits_overrides, options_.model);
    checkpoint_options_ = JobOptionsToJson(options_, true);
    checkpoint_options_["model_weights"] = WeightsChecksum(*detector_);
    checkpoint_options_["quant_scope"] = quant::DetectorScopeName(options_.quant_scope);
    checkpoint_options_["image_size"] = options_.detector_image_size;
    if (options_.source == CalibrationSource::kV2) {
      checkpoint_options_["detector_discrepancy"] =
          gen::DetectorDiscrepancyName(options_.detector_discrepancy);
    }
    if (options_.source == CalibrationSource::kV1) LoadV1Teacher();
    method_ = MethodName(options_.source);
    if (comm_.rank() == 0) {
      LOG(INFO) << "psaq " << (quantize_ ? "quantize" : "generate") << ": "
                << CalibrationSourceName(options_.source) << " samples for detector "
                << detector_->config().name << " on " << comm_.size() << " rank(s), device "
                << options_.device;
    }
  }

  // V1 on a detector: the classifier whose V1 samples are mapped to the detector's input
  // (gen/detector_v1.h). Its weights are part of the checkpoint's identity.
  void LoadV1Teacher() {
    const std::string what = "--v1_teacher=" + options_.v1_teacher;
    if (options_.v1_teacher.empty()) {
      throw std::runtime_error("--method=v1 on a detector needs --v1_teacher (a classifier whose "
                               "V1 samples are mapped to the detector's input)");
    }
    if (detect::IsDetectorFile(options_.v1_teacher)) {
      throw std::runtime_error(what + ": is a detector; V1 needs a classification model");
    }
    try {
      v1_teacher_ = model::LoadModel(options_.v1_teacher, options_.model_fallback_preset);
    } catch (const c10::Error& e) {
      throw std::runtime_error(what + ": " + e.what_without_backtrace());
    } catch (const std::exception& e) {
      throw std::runtime_error(what + ": " + e.what());
    }
    v1_teacher_->eval();
    for (auto& p : v1_teacher_->parameters()) p.set_requires_grad(false);
    v1_teacher_->to(ctx_.device);
    checkpoint_options_["v1_teacher"] = options_.v1_teacher;
    checkpoint_options_["v1_teacher_weights"] = WeightsChecksum(*v1_teacher_);
  }

  // Step 2 for a detector: V1 or V2 samples (checkpointed), noise or real samples at the
  // detector's input size, or an earlier run's.
  JobStatus ProduceDetectorSamples() {
    if (options_.source == CalibrationSource::kV1) return ProduceDetectorV1Samples();
    if (options_.source == CalibrationSource::kV2) return ProduceDetectorV2Samples();
    PhaseTimers::Scope timer(timers_, "sampling");
    const detect::DetectorConfig& config = detector_->config();
    switch (options_.source) {
      case CalibrationSource::kV1:
      case CalibrationSource::kV2:
        break;  // above
      case CalibrationSource::kNoise:
        image_size_ = DetectorImageSize(options_, config);
        samples_ = DetectorNoiseShard(config, image_size_, options_.seed, options_.num_samples,
                                      comm_.size(), comm_.rank(), ctx_.device);
        break;
      case CalibrationSource::kReal:
        image_size_ = DetectorImageSize(options_, config);
        samples_ = DetectorRealShard(options_.real, config, image_size_, options_.seed,
                                     options_.num_samples, comm_.size(), comm_.rank(),
                                     ctx_.device);
        if (options_.real.on_bad_image == quant::BadImagePolicy::kSkip) CountSkippedImages();
        break;
      case CalibrationSource::kSampleFiles: {
        SampleSet set = ReadSampleSet(options_.sample_files);
        const std::string what = "--sample_files (" + set.files.front() + ")";
        const auto arch = set.metadata.find("arch");
        if (arch == set.metadata.end() || arch->second != detect::kMaskRcnnSwinArch) {
          throw std::runtime_error(what + ": samples made for another model than a detector");
        }
        const at::Tensor& im = set.images;
        if (im.size(1) != config.in_chans || im.size(2) % config.size_divisor() != 0 ||
            im.size(3) % config.size_divisor() != 0) {
          throw std::runtime_error(what + ": images " + c10::str(im.sizes()) + " do not fit " +
                                   config.name + " (channels " + std::to_string(config.in_chans) +
                                   ", sides multiples of " +
                                   std::to_string(config.size_divisor()) + ")");
        }
        const dist::Range mine = dist::ShardRange(im.size(0), comm_.size(), comm_.rank());
        samples_.images = im.slice(0, mine.begin, mine.end).to(ctx_.device);
        samples_.indices = at::arange(mine.begin, mine.end);
        image_size_ = im.size(2);
        method_ = set.metadata.count("method") ? set.metadata.at("method") : "files";
        options_.num_samples = std::stoll(set.metadata.at("num_samples"));
        report_.outputs["samples"] = set.files;
        break;
      }
    }
    return JobStatus::kComplete;
  }

  // V1 samples of the --v1_teacher classifier at its own size (RunV1Shard: checkpointed), then
  // mapped to square detector inputs of side --image_size.
  JobStatus ProduceDetectorV1Samples() {
    image_size_ = DetectorImageSize(options_, detector_->config());
    V1RunResult r =
        RunV1Shard(*v1_teacher_, options_.v1, options_.seed, options_.num_samples, ctx_);
    report_.work = r.work;
    if (r.status != JobStatus::kComplete) return r.status;
    samples_ = r.samples;
    at::NoGradGuard no_grad;
    samples_.images = gen::ClassifierSamplesToDetector(
        r.samples.images, v1_teacher_->config(), detector_->config(), image_size_, image_size_);
    return r.status;
  }

  // V2 rounds with the float detector as teacher and a QuantizedDetector of a second copy (the
  // student is trained, the teacher must stay as loaded) as student: the student is the export.
  JobStatus ProduceDetectorV2Samples() {
    image_size_ = DetectorImageSize(options_, detector_->config());
    {
      PhaseTimers::Scope timer(timers_, "init");
      detect::DetectorPtr copy = detect::LoadDetector(options_.model);
      copy->eval();
      copy->to(ctx_.device);
      qd_ = std::make_unique<quant::QuantizedDetector>(copy, options_.quant, options_.quant_scope);
    }
    gen::DetectorV2Models models(*detector_, *qd_, options_.detector_discrepancy, image_size_);
    V2RunResult r = RunV2Shard(models, options_.v2, options_.seed, options_.num_samples, ctx_);
    samples_ = r.samples, report_.work = r.work;
    report_.grad_sync = r.timings.grad_sync;
    return r.status;
  }

  // Steps 4-5 for a detector: calibrate (observers merged over ranks; V2: the student keeps
  // its own ranges), compare the FPN features with the float detector's on the samples, rank 0
  // exports.
  void QuantizeAndExportDetector() {
    const std::vector<at::Tensor> batches = Chunks(samples_.images, options_.batch_size);
    {
      PhaseTimers::Scope timer(timers_, "calibration");
      if (qd_ == nullptr) {
        // The quantizers share the float detector: PSAQ's quantizer leaves its parameters alone.
        qd_ = std::make_unique<quant::QuantizedDetector>(detector_, options_.quant,
                                                         options_.quant_scope);
        quant::Calibrate(*qd_, batches, &comm_);
      }
      qd_->SetMode(quant::TapQuantizers::Mode::kQuantized);
    }
    report_.metrics.update(CompareDetectorWithTeacher(*detector_, *qd_, batches, ctx_));
    report_.metrics["num_samples"] = options_.num_samples;
    PhaseTimers::Scope timer(timers_, "export");
    const std::string path = ModelPath(options_.output_dir);
    if (comm_.rank() == 0) {
      quant::ExportQuantizedDetector(*qd_, path, {method_, options_.num_samples, "psaq"});
      LOG(INFO) << "exported " << quant::DescribeQuantConfig(options_.quant) << " detector (scope "
                << quant::DetectorScopeName(options_.quant_scope) << ") to " << path
                << " (FPN SQNR " << report_.metrics["fpn_sqnr_db"].get<double>()
                << " dB vs the float detector on the samples)";
    }
    comm_.Barrier();
    report_.outputs["model"] = path;
    report_.outputs["manifest"] = quant::ManifestPath(path);
  }

  // Step 6: report.json, identical on every rank, written by rank 0.
  JobResult Finish(JobStatus final_status) {
    report_.status = JobStatusName(final_status);
    report_.timers = timers_;
    report_.wall_seconds = NowSeconds() - start_;
    report_.comm_seconds = comm_.seconds_in_collectives();
    if (final_status == JobStatus::kPreempted) {
      report_.outputs["checkpoint"] = CheckpointDir(options_.output_dir);
    }
    JobResult result;
    result.status = final_status;
    result.report = WriteRunReport(comm_, ReportPath(options_.output_dir), report_, ctx_.device);
    const nlohmann::json& outputs = report_.outputs;
    if (outputs.contains("model")) result.model_path = outputs["model"].get<std::string>();
    if (outputs.contains("samples") && options_.source != CalibrationSource::kSampleFiles) {
      result.sample_files = outputs["samples"].get<std::vector<std::string>>();
    }
    return result;
  }

  // Step 7: the report says the evaluation is running until its result replaces the mark, so a
  // run stopped during it does not read as evaluated. The rest of the report (and its
  // wall_seconds) is the complete run's.
  void Evaluate(JobResult& result) {
    const std::string path = ReportPath(options_.output_dir);
    const auto write = [&](const nlohmann::json& evaluation) {
      result.report["evaluation"] = evaluation;
      if (comm_.rank() == 0) base::WriteFileAtomic(path, result.report.dump(2) + "\n");
      comm_.Barrier();
    };
    write({{"status", "running"}, {"dataset", options_.eval.dataset}});
    nlohmann::json evaluation =
        detector_job_
            ? EvaluateDetectorAndExport(options_, *detector_, result.model_path, ctx_)
            : EvaluateTeacherAndExport(options_, *teacher_, result.model_path, ctx_);
    if (detector_job_) evaluation["peak_rss_mb"] = PeakRssMb(ctx_);
    write(evaluation);
  }

  const double start_;
  // Rank 0 holds the output directory's lock while the Job exists: through the evaluation, and
  // released on every return or exception (Run's callers destroy the Job right after).
  PreparedOutputDir output_;
  QuantizeJobOptions options_;
  dist::Communicator& comm_;
  const bool quantize_;
  PhaseTimers timers_;
  ProgressReporter progress_;
  JobContext ctx_;
  model::ModelPtr teacher_;
  model::ModelPtr v1_teacher_;  // a detector's --v1_teacher classifier (v1 only)
  nlohmann::json checkpoint_options_;
  std::string method_;
  std::unique_ptr<CheckpointStore> store_;
  std::unique_ptr<quant::QuantizedModel> q_;
  // A detector job (the model file is a detector's): its float detector and quantized detector.
  bool detector_job_ = false;
  detect::DetectorPtr detector_;
  std::unique_ptr<quant::QuantizedDetector> qd_;
  int64_t image_size_ = 0;  // the samples' side
  ShardSamples samples_;
  RunReportInput report_;
};

}  // namespace

JobResult RunQuantizeJob(const QuantizeJobOptions& options, dist::Communicator& comm) {
  return Job(options, comm, true).Run();
}

JobResult RunGenerateJob(const QuantizeJobOptions& options, dist::Communicator& comm) {
  TORCH_CHECK(options.source != CalibrationSource::kSampleFiles,
              "generate: the 'files' source only makes sense for quantize");
  return Job(options, comm, false).Run();
}

}  // namespace psaq::job
