// The options of the distributed jobs behind `psaq generate` and `psaq quantize`
// (launch/job/quantize_job.h). Plain structs, every field defaulted; the CLI fills them from flags.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gen/detector_discrepancy.h"
#include "gen/v1_generator.h"
#include "gen/v2_options.h"
#include "launch/job/progress.h"
#include "model/data/idx_dataset.h"
#include "quant/evaluate.h"
#include "quant/quant_config.h"
#include "quant/quantized_detector.h"

namespace psaq::job {

// Where the calibration samples come from.
enum class CalibrationSource {
  kV1,           // PSAQ-ViT V1 generation (PSAQ mode 0)
  kV2,           // the R-V2 reconstruction; the exported model is the evolved student
  kNoise,        // N(0, 1) in normalised space, per sample index (PSAQ mode 1; not clamped)
  kReal,         // preprocessed training images, chosen by a seeded shuffle (PSAQ mode 2)
  kSampleFiles,  // samples written by an earlier run (launch/job/sample_store.h)
};
// "v1" | "v2" | "noise" | "real" | "files"; Parse throws std::invalid_argument listing them.
std::string CalibrationSourceName(CalibrationSource source);
CalibrationSource ParseCalibrationSource(const std::string& name);
// The "method" recorded in sample files and exports: psaq_v1, psaq_v2, noise, real (files: the
// method stored in the files).
std::string MethodName(CalibrationSource source);

struct RealDataOptions {
  // "fashion_mnist" (the IDX files in dataset_dir, split `split`) or the root of an ImageFolder
  // holding the TRAINING images (<root>/<class>/<image>; split is then ignored), as psaq eval
  // names datasets; for a detector a COCO instances JSON of training images (split and
  // dataset_dir ignored). Default fashion_mnist.
  std::string dataset = "fashion_mnist";
  // Directory of the Fashion-MNIST files. Default Debian's.
  std::string dataset_dir = model::kDebianFashionMnistDir;
  // Fashion-MNIST split. Default "train" (PSAQ calibrates on training images).
  std::string split = "train";
  // Images that do not decode: fail (default) or skip, each replaced by a later image of the
  // seeded order (launch/job/calibration_sources.h RealShard) and counted in report.json.
  quant::BadImagePolicy on_bad_image = quant::BadImagePolicy::kFail;
};

// The final evaluation of a quantize job (launch/job/quantize_job.h step 7).
struct EvalJobOptions {
  // Labelled images for the top-1 of the float teacher and of the export: "fashion_mnist" (the
  // TEST split of the IDX files in dataset_dir) or an ImageFolder root; for a detector a COCO
  // instances JSON (box and mask AP, quant/evaluate_detector.h). Default "" = none.
  std::string dataset;
  // Directory of the Fashion-MNIST files. Default Debian's.
  std::string dataset_dir = model::kDebianFashionMnistDir;
  // Also evaluate the float teacher (turn off when quantizing one model many ways). Default true.
  bool evaluate_float = true;
  // Undecodable images: fail (default) or skip and count them.
  quant::BadImagePolicy on_bad_image = quant::BadImagePolicy::kFail;
};

struct QuantizeJobOptions {
  // The teacher: a preset name (random weights) or a float weights file (model::LoadModel).
  std::string model;
  // Architecture preset for a timm weights file without psaq metadata (model::LoadModel).
  std::string model_fallback_preset;
  // Where the calibration samples come from. Default V1.
  CalibrationSource source = CalibrationSource::kV1;
  // kSampleFiles: shard files or directories (launch/job/sample_store.h ReadSampleSet).
  std::vector<std::string> sample_files;
  // Samples in TOTAL over all ranks; rank r makes dist::ShardRange(num_samples, world, r).
  // Default 32 (PSAQ's one batch). Ignored for kSampleFiles (the files' count is used).
  int64_t num_samples = 32;
  // Samples per generation batch (V1: one optimisation problem; V2: one image optimiser) and per
  // calibration forward pass. Overrides v1.batch_size and v2.batch_size. Default 32.
  // With num_samples a multiple of world_size * batch_size every batch is full, and V1/V2
  // samples do not depend on the world size.
  int64_t batch_size = 32;
  // The job seed: every random value derives from it (gen/random_streams.h). Default 0.
  uint64_t seed = 0;
  // Bit widths etc. of the exported model (and of V2's student).
  quant::QuantConfig quant;
  gen::V1Options v1;
  gen::V2Options v2;
  RealDataOptions real;
  // Detector models only (a --model file whose metadata says it is a Swin Mask R-CNN,
  // detect::IsDetectorFile); the job refuses them set for a classifier (the CLI does).
  // Which parts of the detector are quantized (quant/quantized_detector.h). Default all.
  quant::DetectorScope quant_scope = quant::DetectorScope::kAll;
  // Side of the square calibration samples (launch/job/detector_sources.h DetectorImageSize);
  // 0 = the chosen real images' largest side (required for noise). Default 0.
  int64_t detector_image_size = 0;
  // V2 on a detector: where the teacher-student discrepancy D is taken (gen/detector_discrepancy.h).
  // Default fpn+roi: in the W4/A8 ablation of docs/results.md ("Detection") the RoI-head term
  // beat D on the FPN alone at each of 3 seeds (box 17.38 vs 17.13, mask 9.87 vs 9.35 AP points
  // on average); it is the only term that trains the heads' weights.
  gen::DetectorDiscrepancyOptions detector_discrepancy = gen::ParseDetectorDiscrepancy("fpn+roi");
  // V1 on a detector: the classification model whose V1 samples are mapped to the detector's
  // input (gen/detector_v1.h); required then, refused when it is a detector. Default "".
  std::string v1_teacher;
  // Quantize only: top-1 on labelled images after the export (not part of the run's identity:
  // JobOptionsToJson leaves it out; report.json has it under "evaluation").
  EvalJobOptions eval;

  // Output directory (created). Layout in launch/job/quantize_job.h.
  std::string output_dir;
  // Continue from output_dir/checkpoint when it exists (else start afresh). When false and a
  // checkpoint exists, the job refuses to start unless `overwrite`.
  bool resume = false;
  // Replace a finished or interrupted run in output_dir: removes psaq's own files only, and
  // refuses (naming them) when the directory holds anything else (launch/job/output_dir.h).
  // Default false: refuse a finished run (clear error).
  bool overwrite = false;
  // How this job names itself in the output directory's lock, for the message a second job on
  // the same directory gets (the CLI passes its command line). Not part of the run's identity.
  // Default "".
  std::string command;
  // V1: checkpoint every this many steps within a batch (and always at batch ends); V2: at the
  // end of the warm-up/initial calibration and of every round. -1 = no checkpoints. Default 100.
  int64_t checkpoint_every = 100;
  // Preemption: polled at checkpoint boundaries; when true on any rank (all-reduce MAX), every
  // rank writes a checkpoint and the job returns JobStatus::kPreempted. Null = never.
  std::function<bool()> should_stop;
  // Device of the models and samples, e.g. "cpu" or "cuda:1" (the CLI picks it per local rank).
  std::string device = "cpu";
  // Memory a rank's samples may take, in bytes (CheckSampleMemory, checked once the teacher's
  // image size is known). 0 = this machine's physical memory (PhysicalMemoryBytes). Default 0.
  int64_t memory_bytes = 0;
  // Progress lines on rank 0.
  ProgressOptions progress;
  // Called after every generation step (phase "v1" | "warmup" | "sample" | "student", this
  // rank's step count). For tests (it may throw to simulate a crash); null in production.
  std::function<void(const std::string& phase, int64_t step)> on_step;
};

// Throws c10::Error naming the field: a path, name or dataset that is not valid UTF-8 (report.json
// records them: "QuantizeJobOptions.output_dir is not valid UTF-8 (byte 9 of '/tmp/run-\xff');
// ..."), empty model or output_dir, num_samples < 1 (except kSampleFiles), kSampleFiles without
// files, batch_size < 1, checkpoint_every < -1, invalid V1/V2/quant options for the chosen source.
void ValidateJobOptions(const QuantizeJobOptions& options);

// Bytes one rank needs for its calibration samples, float32 [n, C, H, W] for the teacher's
// config (n = ceil(num_samples / world), the largest share), and for the generated sources (V1,
// V2) one batch of min(batch_size, n) images with its gradient and Adam's two moments (4 more
// copies). Activations are not counted. 0 for kSampleFiles (the files' count is used). Saturates
// at INT64_MAX. REQUIRES: world >= 1.
int64_t SampleMemoryBytes(const QuantizeJobOptions& options, int world,
                          const model::ModelConfig& config);

// Throws std::runtime_error when SampleMemoryBytes exceeds `memory_bytes`, naming num_samples
// (and samples_per_batch for V1/V2) and the bytes, e.g. "num_samples=1000000000000 needs
// 273808.8 TiB of memory per rank (500000000000 samples of 3x224x224 float32 on each of 2
// rank(s), plus a batch of samples_per_batch=32 with its Adam state), more than the 125.6 GiB of
// this machine".
// Pure (no collective): every rank of one machine decides alike.
void CheckSampleMemory(const QuantizeJobOptions& options, int world,
                       const model::ModelConfig& config, int64_t memory_bytes);

// This machine's physical memory in bytes (sysconf), INT64_MAX when unknown.
int64_t PhysicalMemoryBytes();

// Everything in `options` that affects the samples or the exported model, as JSON (callbacks
// excluded). `for_checkpoint` drops what the checkpointed part cannot depend on (output paths,
// resume/overwrite flags, checkpoint interval, progress, device).
nlohmann::json JobOptionsToJson(const QuantizeJobOptions& options, bool for_checkpoint);

}  // namespace psaq::job
