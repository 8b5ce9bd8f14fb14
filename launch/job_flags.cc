// The flags of `psaq generate` and `psaq quantize`, declared once: each is DEFINEd here (its
// default taken from the options struct it fills, where the CLI uses the library's default), and
// has one row in JobFlags() below saying which runs it applies to and where its value goes in
// job::QuantizeJobOptions. The subcommands' flag lists, the "applies to ... only" checks and the
// options are all derived from that table; a new knob is a struct field, a DEFINE and a row.
#include "launch/job_flags.h"

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "gen/detector_discrepancy.h"
#include "gen/objective.h"
#include "gen/v1_generator.h"
#include "gen/v2_options.h"
#include "launch/flags.h"
#include "launch/shared_flags.h"
#include "model/data/dataset_by_name.h"
#include "model/detect/load_detector.h"
#include "quant/quantized_detector.h"
#include "quant/quant_config.h"

namespace {
// The library's defaults, which the flags below share where the CLI does not override them
// (--method: v2 here, V1 in the struct; --entropy_impl: fused here, reference in KdeOptions).
const psaq::job::QuantizeJobOptions kJob;
const psaq::gen::V1Options kV1;
const psaq::gen::V2Options kV2;
}  // namespace

// --- The job --------------------------------------------------------------------------------
DEFINE_string(method, "v2",
              "Where the calibration samples come from: v2 (PSAQ-ViT V2 reconstruction: samples "
              "and the quantized student evolve in rounds; the exported model is the student), "
              "v1 (PSAQ-ViT V1 patch-similarity generation), noise (N(0,1) images), real "
              "(training images of --dataset), or files (quantize only: the samples of an "
              "earlier run, --sample_files).");
DEFINE_int64(num_samples, kJob.num_samples,
             "Calibration samples in total over all ranks; rank r makes its contiguous share. "
             "With a multiple of ranks x --samples_per_batch every batch is full and V1/V2 "
             "samples do not depend on the number of ranks.");
DEFINE_int64(samples_per_batch, kJob.batch_size,
             "Samples per generation batch (one optimisation problem: the KDE grid and the TV "
             "term span the batch; PSAQ uses 32) and per calibration forward pass.");
DEFINE_string(output_dir, "",
              "Directory for the run (created): samples/, checkpoint/ while unfinished, "
              "model.safetensors + model.manifest.json (quantize), report.json (written last). "
              "One job at a time: a second job on it is refused, naming the first.");
DEFINE_bool(resume, false,
            "Continue the unfinished run in --output_dir from its checkpoint (start afresh when "
            "there is none). Without it, a directory holding a checkpoint is refused.");
DEFINE_bool(overwrite, false,
            "Replace a finished or unfinished run in --output_dir (its samples, checkpoint, model "
            "and report) and start afresh. Deletes only what psaq wrote: a directory holding "
            "anything else is refused, with a list of it.");
DEFINE_int64(checkpoint_every, kJob.checkpoint_every,
             "V1: checkpoint every N steps within a batch (and at every batch end); V2: at the "
             "end of every round. -1 = never (a preemption then loses the run).");
DEFINE_string(sample_files, "",
              "--method=files: comma-separated sample shards or run directories written by "
              "psaq generate/quantize.");
DEFINE_bool(eval_float, true,
            "With --eval_dataset: also evaluate the float model (turn off to save the time when "
            "quantizing one model many ways).");
DEFINE_double(progress_seconds, 10.0,
              "Seconds between two progress lines (rank 0) during generation (0 = every step).");

// --- Quantizer ------------------------------------------------------------------------------
DEFINE_int32(w_bits, kJob.quant.weight_bits,
             "Weight bits (2-8; 32 = float weights): symmetric per output channel. For generate, "
             "the bits of V2's student.");
DEFINE_int32(a_bits, kJob.quant.act_bits,
             "Activation bits (2-8; 32 = float activations): asymmetric per tensor from the "
             "calibration min/max, at every quantization point of the model.");
DEFINE_string(bits_overrides, "",
              "Bit widths for single quantization points, replacing --w_bits/--a_bits there: "
              "NAME=BITS pairs joined by commas, a name being a weight (\"head.weight\") or an "
              "activation point (\"input\": the image) as 'psaq inspect' lists them, BITS 2-8 or "
              "32 (float). E.g. input=8 keeps the image at 8 bits, as the pixels already are "
              "(on the shipped Swin at W4/A4 the 4-bit image costs more than any other point; "
              "docs/quantizers.md). Recorded in the export.");
DEFINE_string(input_range, psaq::quant::InputRangeName(kJob.quant.input_range).c_str(),
              "Range of the input image's quantizer: calibrated (the calibration images' min/max, "
              "as PSAQ) or pixel_box (every valid image: [(0 - mean)/std, (1 - mean)/std] over "
              "the channels), for samples dimmer than real images.");
DEFINE_string(quantizer, psaq::quant::QuantizerKindName(kJob.quant.quantizer).c_str(),
              "Quantization method: psaq (PSAQ-ViT's: every activation per tensor, softmax in "
              "float) or repq (RepQ-ViT's: only the inputs of Linear, Conv and matmul quantized, "
              "post-LayerNorm ones with a scale reparameterisation, the post-softmax attention "
              "with a log-sqrt(2) grid; docs/quantizers.md), for 4-bit activations.");
DEFINE_string(fold_prior, psaq::quant::FoldPriorName(kJob.quant.fold_prior).c_str(),
              "--quantizer=repq: the per-channel ranges of its folded post-LayerNorm points: none "
              "(as observed, RepQ-ViT's) or layernorm (widened so that every channel reaches as "
              "far, in LayerNorm-normalised units, as the widest channel did: for synthetic "
              "samples, whose channels span less than real images'; docs/quantizers.md).");
DEFINE_string(act_observer, "",
              "How each quantized activation's range is calibrated: minmax (the calibration "
              "images' min/max, as PSAQ), percentile (RepQ-ViT's search: of the 0.999, 0.9999 "
              "and 0.99999 percentile ranges, the one its grid quantizes with the least squared "
              "error, from a histogram; per channel at repq's post-LayerNorm points; a second "
              "calibration pass; docs/quantizers.md) or mse (psaq's: the percentile search "
              "continued over 50 clipping tails from 0 to 10%, least squared error per point; on "
              "the shipped teachers no better than percentile with real images and worse with "
              "synthetic samples, docs/quantizers.md). Empty = the --quantizer's own: minmax for "
              "psaq, percentile for repq.");

// --- V1 (PSAQ-ViT, official values) ---------------------------------------------------------
DEFINE_int32(v1_epochs, kV1.epochs, "V1: epochs of the image schedule per batch (official 2).");
DEFINE_int32(v1_iterations, kV1.iterations_per_epoch, "V1: Adam steps per epoch (official 500).");
DEFINE_int32(v1_warmup, kV1.warmup_iterations,
             "V1: linear warm-up steps at the start of each epoch (official 100).");
DEFINE_double(image_lr, kV1.lr,
              "Peak learning rate of the image Adam (V1 and V2); 0 = the official value for the "
              "architecture (0.25 Swin, 0.20 ViT/DeiT).");
DEFINE_string(jitter_limits, "",
              "Roll jitter limits in pixels per V1 epoch, comma-separated, e.g. '3,6' (the last "
              "applies to later epochs); empty = the official 15,30 at 224 px scaled to the image "
              "size.");
DEFINE_double(entropy_weight, kV1.weights.entropy,
              "Weight of the patch-similarity entropy term (V1 and V2).");
DEFINE_double(ce_weight, kV1.weights.cross_entropy,
              "V1: weight of the cross-entropy with random labels (official 1).");
DEFINE_double(tv_weight, kV1.weights.tv,
              "Weight of the total-variation target term (V1 and V2). Default 0, departing from "
              "the paper's 0.05: its ImageNet-sized target makes dim, low-contrast samples on "
              "small images (gen/v1_generator.h); --v1_official restores 0.05 for V1.");
DEFINE_bool(v1_official, false,
            "V1: the official PSAQ-ViT settings where psaq's defaults depart from them "
            "(gen/v1_generator.h ApplyOfficialV1: today the TV weight 0.05), to reproduce the "
            "paper's method. Excludes --tv_weight.");
DEFINE_double(kde_bandwidth, kV1.kde.bandwidth,
              "Bandwidth h of the Gaussian KDE of patch similarities (official 0.01).");
DEFINE_string(entropy_impl, "fused",
              "Patch-similarity entropy implementation: fused (no (B, 10, M) kernel tensor; "
              "matches the reference to 1e-9 in float64) or reference (the official formulation).");

// --- V2 (reconstruction; see README) --------------------------------------------------------
DEFINE_int32(v2_rounds, kV2.rounds, "V2: rounds, each a sample step then a student step.");
DEFINE_int32(v2_sample_iterations, kV2.sample_iterations,
             "V2: image Adam steps per round on every batch.");
DEFINE_int32(v2_image_warmup, kV2.image_warmup,
             "V2: linear warm-up steps of the image learning rate (per round with per_round; at "
             "the start with global).");
DEFINE_int32(v2_student_iterations, kV2.student_iterations, "V2: student Adam steps per round.");
DEFINE_int32(v2_warmup_iterations, kV2.warmup_iterations,
             "V2: V1-style steps (entropy + TV, no labels) before the first calibration; 0 = "
             "calibrate the student on the initial noise.");
DEFINE_double(v2_adversarial_weight, kV2.weights.adversarial,
              "V2: λ, the weight of -D(teacher, student) in the sample loss (0 = samples ignore "
              "the student).");
DEFINE_double(v2_student_lr, kV2.student_lr, "V2: learning rate of the student's Adam.");
DEFINE_string(v2_student_update, psaq::gen::StudentUpdateName(kV2.student_update).c_str(),
              "V2: latent_weights (Adam on the student's latent float weights through the "
              "straight-through quantizer) or recalibrate_only (no weight update; only the "
              "activation ranges follow the samples).");
DEFINE_bool(v2_train_biases, kV2.student_parameters.biases,
            "V2: the student step also trains the biases.");
DEFINE_bool(v2_train_norms, kV2.student_parameters.norms,
            "V2: the student step also trains the LayerNorms.");
DEFINE_bool(v2_recalibrate_each_round, kV2.recalibrate_each_round,
            "V2: re-calibrate the student's activation ranges on the current samples after every "
            "round (merged over ranks).");
DEFINE_string(v2_discrepancy, psaq::gen::DiscrepancyKindName(kV2.discrepancy.kind).c_str(),
              "V2: the teacher-student discrepancy D: kl_logits (KL of the softmax outputs) or "
              "mse_features (block outputs; for backbones without a classifier).");
DEFINE_double(v2_temperature, kV2.discrepancy.temperature, "V2: temperature τ of kl_logits.");
DEFINE_string(v2_image_schedule, psaq::gen::ImageScheduleName(kV2.image_schedule).c_str(),
              "V2: image learning-rate schedule: per_round (V1's warm-up + cosine restarted every "
              "round) or global (one over all rounds).");

// --- Detectors (a --model file whose metadata says it is a Swin Mask R-CNN) ------------------
DEFINE_string(quant_scope, psaq::quant::DetectorScopeName(kJob.quant_scope).c_str(),
              "Detectors only: which parts are quantized: backbone, backbone_neck or all (every "
              "Conv/Linear of backbone, FPN, RPN, box and mask heads and the activations feeding "
              "them; LayerNorm, softmax, GELU, sigmoid, RoIAlign, NMS, box decoding and mask "
              "pasting stay float). docs/detection.md.");
DEFINE_int64(image_size, kJob.detector_image_size,
             "Detectors only: side of the square calibration samples, a multiple of the "
             "detector's size divisor; 0 = the largest side of the chosen --method=real images "
             "(required for --method=noise|v1|v2).");
DEFINE_string(v2_detector_discrepancy,
              psaq::gen::DetectorDiscrepancyName(kJob.detector_discrepancy).c_str(),
              "Detectors, --method=v2: where the teacher-student discrepancy D is taken: fpn "
              "(the FPN levels), rpn (the RPN objectness), fpn+rpn, fpn+roi or fpn+rpn+roi (roi: "
              "the box and mask heads' logits on the teacher's top 16 proposals per image, the "
              "only term that trains the heads' weights). A reconstruction; docs/detection.md.");
DEFINE_string(v1_teacher, "",
              "Detectors, --method=v1 (required there): a classification model file whose V1 "
              "samples are resized to --image_size and renormalised for the detector.");

namespace {

bool ValidateQuantScope(const char* flag, const std::string& v) {
  return psaq::launch::CheckOneOf(flag, v, {"backbone", "backbone_neck", "all"});
}

bool ValidateDetectorDiscrepancy(const char* flag, const std::string& v) {
  return psaq::launch::CheckOneOf(flag, v, {"fpn", "rpn", "fpn+rpn", "fpn+roi", "fpn+rpn+roi"});
}

bool ValidateBits(const char* flag, int32_t v) {
  return (v >= 2 && v <= 8) || v == 32 ||
         psaq::launch::RefuseFlag(
             flag, "must be 2-8, or 32 for no quantization, got " + std::to_string(v));
}
bool ValidateMethod(const char* flag, const std::string& v) {
  return psaq::launch::CheckOneOf(flag, v, {"v1", "v2", "noise", "real", "files"});
}
bool ValidateEntropyImpl(const char* flag, const std::string& v) {
  return psaq::launch::CheckOneOf(flag, v, {"fused", "reference"});
}
bool ValidateStudentUpdate(const char* flag, const std::string& v) {
  return psaq::launch::CheckOneOf(flag, v, {"latent_weights", "recalibrate_only"});
}
bool ValidateDiscrepancy(const char* flag, const std::string& v) {
  return psaq::launch::CheckOneOf(flag, v, {"kl_logits", "mse_features"});
}
bool ValidateImageSchedule(const char* flag, const std::string& v) {
  return psaq::launch::CheckOneOf(flag, v, {"per_round", "global"});
}
bool ValidateInputRange(const char* flag, const std::string& v) {
  return psaq::launch::CheckOneOf(flag, v, {"calibrated", "pixel_box"});
}
bool ValidateQuantizer(const char* flag, const std::string& v) {
  return psaq::launch::CheckOneOf(flag, v, {"psaq", "repq"});
}
bool ValidateFoldPrior(const char* flag, const std::string& v) {
  return psaq::launch::CheckOneOf(flag, v, {"none", "layernorm"});
}
bool ValidateActObserver(const char* flag, const std::string& v) {
  return v.empty() || psaq::launch::CheckOneOf(flag, v, {"minmax", "percentile", "mse"});
}
bool ValidateBitsOverrides(const char* flag, const std::string& v) {
  try {
    psaq::quant::ParseBitsOverrides(v);
    return true;
  } catch (const std::invalid_argument& e) {
    return psaq::launch::RefuseFlag(flag, e.what());
  }
}
bool ValidateCheckpointEvery(const char* flag, int64_t v) {
  return v >= -1 ||
         psaq::launch::RefuseFlag(flag, "must be >= 1, 0 or -1, got " + std::to_string(v));
}

}  // namespace

DEFINE_validator(method, &ValidateMethod);
DEFINE_validator(quant_scope, &ValidateQuantScope);
DEFINE_validator(image_size, &psaq::launch::AtLeast64<0>);
DEFINE_validator(v2_detector_discrepancy, &ValidateDetectorDiscrepancy);
DEFINE_validator(num_samples, &psaq::launch::AtLeast64<1>);
DEFINE_validator(samples_per_batch, &psaq::launch::AtLeast64<1>);
DEFINE_validator(checkpoint_every, &ValidateCheckpointEvery);
DEFINE_validator(progress_seconds, &psaq::launch::NonNegativeDouble);
DEFINE_validator(w_bits, &ValidateBits);
DEFINE_validator(a_bits, &ValidateBits);
DEFINE_validator(bits_overrides, &ValidateBitsOverrides);
DEFINE_validator(input_range, &ValidateInputRange);
DEFINE_validator(quantizer, &ValidateQuantizer);
DEFINE_validator(act_observer, &ValidateActObserver);
DEFINE_validator(fold_prior, &ValidateFoldPrior);
DEFINE_validator(v1_epochs, &psaq::launch::AtLeast<1>);
DEFINE_validator(v1_iterations, &psaq::launch::AtLeast<1>);
DEFINE_validator(v1_warmup, &psaq::launch::AtLeast<0>);
DEFINE_validator(image_lr, &psaq::launch::NonNegativeDouble);
DEFINE_validator(entropy_weight, &psaq::launch::NonNegativeDouble);
DEFINE_validator(ce_weight, &psaq::launch::NonNegativeDouble);
DEFINE_validator(tv_weight, &psaq::launch::NonNegativeDouble);
DEFINE_validator(kde_bandwidth, &psaq::launch::PositiveDouble);
DEFINE_validator(entropy_impl, &ValidateEntropyImpl);
DEFINE_validator(v2_rounds, &psaq::launch::AtLeast<1>);
DEFINE_validator(v2_sample_iterations, &psaq::launch::AtLeast<1>);
DEFINE_validator(v2_image_warmup, &psaq::launch::AtLeast<0>);
DEFINE_validator(v2_student_iterations, &psaq::launch::AtLeast<0>);
DEFINE_validator(v2_warmup_iterations, &psaq::launch::AtLeast<0>);
DEFINE_validator(v2_adversarial_weight, &psaq::launch::NonNegativeDouble);
DEFINE_validator(v2_student_lr, &psaq::launch::NonNegativeDouble);
DEFINE_validator(v2_student_update, &ValidateStudentUpdate);
DEFINE_validator(v2_discrepancy, &ValidateDiscrepancy);
DEFINE_validator(v2_temperature, &psaq::launch::PositiveDouble);
DEFINE_validator(v2_image_schedule, &ValidateImageSchedule);

namespace psaq::launch {
namespace {

// Which runs a flag applies to; setting it for another run is a usage error naming `where`.
enum class Scope {
  kAll,         // every run of generate and quantize
  kQuantize,    // psaq quantize only
  kEvaluation,  // psaq quantize with --eval_dataset
  kImages,      // runs that decode images: --method=real, and psaq quantize with --eval_dataset
  kBits,        // psaq quantize, and generate's V2 student
  kGeneration,  // --method=v1|v2 (the image optimisation)
  kV1,          // --method=v1
  kV2,          // --method=v2
  kReal,        // --method=real
  kFiles,       // --method=files
  kDetector,    // a detector --model
  kDetectorV1,  // --method=v1 on a detector --model
  kDetectorV2,  // --method=v2 on a detector --model
};

bool Applies(Scope scope, JobKind kind, const std::string& method) {
  switch (scope) {
    case Scope::kAll:
      return true;
    case Scope::kQuantize:
      return kind == JobKind::kQuantize;
    case Scope::kEvaluation:
      return kind == JobKind::kQuantize && !FLAGS_eval_dataset.empty();
    case Scope::kImages:
      return method == "real" || Applies(Scope::kEvaluation, kind, method);
    case Scope::kBits:
      return kind == JobKind::kQuantize || method == "v2";
    case Scope::kGeneration:
      return method == "v1" || method == "v2";
    case Scope::kV1:
      return method == "v1";
    case Scope::kV2:
      return method == "v2";
    case Scope::kReal:
      return method == "real";
    case Scope::kFiles:
      return method == "files";
    case Scope::kDetector:
      return detect::IsDetectorFile(FLAGS_model);
    case Scope::kDetectorV1:
      return method == "v1" && detect::IsDetectorFile(FLAGS_model);
    case Scope::kDetectorV2:
      return method == "v2" && detect::IsDetectorFile(FLAGS_model);
  }
  return false;
}

std::string Where(Scope scope) {
  switch (scope) {
    case Scope::kQuantize:
      return "psaq quantize";
    case Scope::kEvaluation:
      return "--eval_dataset";
    case Scope::kImages:
      return "--method=real and --eval_dataset";
    case Scope::kBits:
      return "psaq quantize and the student of --method=v2";
    case Scope::kGeneration:
      return "--method=v1|v2";
    case Scope::kV1:
      return "--method=v1";
    case Scope::kV2:
      return "--method=v2";
    case Scope::kReal:
      return "--method=real";
    case Scope::kFiles:
      return "--method=files";
    case Scope::kDetector:
      return "detector models";
    case Scope::kDetectorV1:
      return "--method=v1 on a detector model";
    case Scope::kDetectorV2:
      return "--method=v2 on a detector model";
    case Scope::kAll:
      break;
  }
  return "";
}

using Options = job::QuantizeJobOptions;

struct JobFlag {
  const char* name;
  Scope scope;
  // Copies the flag's value into the options (null for flags read before the options exist).
  std::function<void(Options&)> apply;
  // Taken by psaq generate (all are taken by psaq quantize).
  bool generate = true;
};

std::vector<int64_t> JitterLimits();
gen::KdeOptions Kde();

// Every flag of generate/quantize, in the order `--help` and the summary think of them.
const std::vector<JobFlag>& JobFlags() {
  static const std::vector<JobFlag> table = {
      // Shared flags (launch/shared_flags.cc).
      {"model", Scope::kAll, [](Options& o) { o.model = FLAGS_model; }},
      {"seed", Scope::kAll, [](Options& o) { o.seed = FLAGS_seed; }},
      {"device", Scope::kAll, nullptr},  // the process picks the device (ProcessContext)
      {"dataset", Scope::kReal,
       [](Options& o) {
         if (!FLAGS_dataset.empty()) o.real.dataset = FLAGS_dataset;
       }},
      {"dataset_dir", Scope::kImages,  // also where --eval_dataset=fashion_mnist is read
       [](Options& o) { o.real.dataset_dir = o.eval.dataset_dir = FLAGS_dataset_dir; }},
      {"split", Scope::kReal, nullptr},  // read with its default "train" in JobOptionsFromFlags
      {"eval_dataset", Scope::kQuantize, [](Options& o) { o.eval.dataset = FLAGS_eval_dataset; },
       false},
      {"on_bad_image", Scope::kImages,
       [](Options& o) {
         o.real.on_bad_image = quant::ParseBadImagePolicy(FLAGS_on_bad_image);
         o.eval.on_bad_image = o.real.on_bad_image;
       }},
      // The job.
      {"method", Scope::kAll,
       [](Options& o) { o.source = job::ParseCalibrationSource(FLAGS_method); }},
      {"num_samples", Scope::kAll, [](Options& o) { o.num_samples = FLAGS_num_samples; }},
      {"samples_per_batch", Scope::kAll,
       [](Options& o) { o.batch_size = FLAGS_samples_per_batch; }},
      {"output_dir", Scope::kAll, [](Options& o) { o.output_dir = FLAGS_output_dir; }},
      {"resume", Scope::kAll, [](Options& o) { o.resume = FLAGS_resume; }},
      {"overwrite", Scope::kAll, [](Options& o) { o.overwrite = FLAGS_overwrite; }},
      {"checkpoint_every", Scope::kAll,
       [](Options& o) { o.checkpoint_every = FLAGS_checkpoint_every; }},
      // Taken by generate too, so that --method=files there gets its own explanation.
      {"sample_files", Scope::kFiles,
       [](Options& o) { o.sample_files = SplitFlagList(FLAGS_sample_files); }},
      {"eval_float", Scope::kEvaluation,
       [](Options& o) { o.eval.evaluate_float = FLAGS_eval_float; }, false},
      {"progress_seconds", Scope::kAll,
       [](Options& o) { o.progress.interval_seconds = FLAGS_progress_seconds; }},
      // Quantizer.
      {"w_bits", Scope::kBits, [](Options& o) { o.quant.weight_bits = FLAGS_w_bits; }},
      {"a_bits", Scope::kBits, [](Options& o) { o.quant.act_bits = FLAGS_a_bits; }},
      {"bits_overrides", Scope::kBits,
       [](Options& o) { o.quant.bits_overrides = quant::ParseBitsOverrides(FLAGS_bits_overrides); }},
      {"input_range", Scope::kBits,
       [](Options& o) { o.quant.input_range = quant::ParseInputRange(FLAGS_input_range); }},
      {"quantizer", Scope::kBits,
       [](Options& o) { o.quant.quantizer = quant::ParseQuantizerKind(FLAGS_quantizer); }},
      {"fold_prior", Scope::kBits,
       [](Options& o) { o.quant.fold_prior = quant::ParseFoldPrior(FLAGS_fold_prior); }},
      {"act_observer", Scope::kBits,
       [](Options& o) {
         o.quant.act_observer =
             FLAGS_act_observer.empty()
                 ? quant::DefaultObserver(quant::ParseQuantizerKind(FLAGS_quantizer))
                 : quant::ParseObserverKind(FLAGS_act_observer);
       }},
      // Detectors.
      {"quant_scope", Scope::kDetector,
       [](Options& o) { o.quant_scope = quant::ParseDetectorScope(FLAGS_quant_scope); }},
      {"image_size", Scope::kDetector,
       [](Options& o) { o.detector_image_size = FLAGS_image_size; }},
      {"v2_detector_discrepancy", Scope::kDetectorV2,
       [](Options& o) {
         o.detector_discrepancy = gen::ParseDetectorDiscrepancy(FLAGS_v2_detector_discrepancy);
       }},
      {"v1_teacher", Scope::kDetectorV1, [](Options& o) { o.v1_teacher = FLAGS_v1_teacher; }},
      // V1 and V2's image optimisation.
      {"image_lr", Scope::kGeneration,
       [](Options& o) { o.v1.lr = o.v2.image_lr = FLAGS_image_lr; }},
      {"jitter_limits", Scope::kGeneration,
       [](Options& o) {
         o.v1.jitter_limits = JitterLimits();
         if (!o.v1.jitter_limits.empty()) o.v2.jitter_limit = o.v1.jitter_limits.front();
       }},
      {"entropy_weight", Scope::kGeneration,
       [](Options& o) { o.v1.weights.entropy = o.v2.weights.entropy = FLAGS_entropy_weight; }},
      {"tv_weight", Scope::kGeneration,
       [](Options& o) { o.v1.weights.tv = o.v2.weights.tv = FLAGS_tv_weight; }},
      {"kde_bandwidth", Scope::kGeneration, [](Options& o) { o.v1.kde = o.v2.kde = Kde(); }},
      {"entropy_impl", Scope::kGeneration, [](Options& o) { o.v1.kde = o.v2.kde = Kde(); }},
      // V1.
      {"v1_epochs", Scope::kV1, [](Options& o) { o.v1.epochs = FLAGS_v1_epochs; }},
      {"v1_iterations", Scope::kV1,
       [](Options& o) { o.v1.iterations_per_epoch = FLAGS_v1_iterations; }},
      {"v1_warmup", Scope::kV1, [](Options& o) { o.v1.warmup_iterations = FLAGS_v1_warmup; }},
      {"ce_weight", Scope::kV1, [](Options& o) { o.v1.weights.cross_entropy = FLAGS_ce_weight; }},
      {"v1_official", Scope::kV1,
       [](Options& o) {
         if (FLAGS_v1_official) gen::ApplyOfficialV1(o.v1);
       }},
      // V2.
      {"v2_rounds", Scope::kV2, [](Options& o) { o.v2.rounds = FLAGS_v2_rounds; }},
      {"v2_sample_iterations", Scope::kV2,
       [](Options& o) { o.v2.sample_iterations = FLAGS_v2_sample_iterations; }},
      {"v2_image_warmup", Scope::kV2,
       [](Options& o) { o.v2.image_warmup = FLAGS_v2_image_warmup; }},
      {"v2_student_iterations", Scope::kV2,
       [](Options& o) { o.v2.student_iterations = FLAGS_v2_student_iterations; }},
      {"v2_warmup_iterations", Scope::kV2,
       [](Options& o) { o.v2.warmup_iterations = FLAGS_v2_warmup_iterations; }},
      {"v2_adversarial_weight", Scope::kV2,
       [](Options& o) { o.v2.weights.adversarial = FLAGS_v2_adversarial_weight; }},
      {"v2_student_lr", Scope::kV2, [](Options& o) { o.v2.student_lr = FLAGS_v2_student_lr; }},
      {"v2_student_update", Scope::kV2,
       [](Options& o) { o.v2.student_update = gen::ParseStudentUpdate(FLAGS_v2_student_update); }},
      {"v2_train_biases", Scope::kV2,
       [](Options& o) { o.v2.student_parameters.biases = FLAGS_v2_train_biases; }},
      {"v2_train_norms", Scope::kV2,
       [](Options& o) { o.v2.student_parameters.norms = FLAGS_v2_train_norms; }},
      {"v2_recalibrate_each_round", Scope::kV2,
       [](Options& o) { o.v2.recalibrate_each_round = FLAGS_v2_recalibrate_each_round; }},
      {"v2_discrepancy", Scope::kV2,
       [](Options& o) { o.v2.discrepancy.kind = gen::ParseDiscrepancyKind(FLAGS_v2_discrepancy); }},
      {"v2_temperature", Scope::kV2,
       [](Options& o) { o.v2.discrepancy.temperature = FLAGS_v2_temperature; }},
      {"v2_image_schedule", Scope::kV2,
       [](Options& o) { o.v2.image_schedule = gen::ParseImageSchedule(FLAGS_v2_image_schedule); }},
  };
  return table;
}

bool IsSet(const std::string& flag) {
  return !gflags::GetCommandLineFlagInfoOrDie(flag.c_str()).is_default;
}

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

gen::KdeOptions Kde() {
  gen::KdeOptions kde;
  kde.bandwidth = FLAGS_kde_bandwidth;
  kde.implementation = FLAGS_entropy_impl == "fused" ? gen::KdeImplementation::kFused
                                                     : gen::KdeImplementation::kReference;
  return kde;
}

// The checks no row can express: required flags, exclusive flags, what a method needs.
void CheckCombinations(JobKind kind, const std::string& method) {
  if (FLAGS_model.empty()) throw UsageError("--model is required");
  if (FLAGS_output_dir.empty()) throw UsageError("--output_dir is required");
  if (FLAGS_resume && FLAGS_overwrite) {
    throw UsageError("--resume and --overwrite exclude each other");
  }
  if (method == "files") {
    if (kind == JobKind::kGenerate) {
      throw UsageError("--method=files reads samples; it applies to psaq quantize only");
    }
    if (FLAGS_sample_files.empty()) throw UsageError("--method=files needs --sample_files");
    if (IsSet("num_samples")) {
      throw UsageError("--num_samples does not apply to --method=files (the files' count is used)");
    }
  }
  if (method == "real" && FLAGS_dataset.empty()) {
    throw UsageError("--method=real needs --dataset (the training images to calibrate on)");
  }
  if (FLAGS_fold_prior != "none" && FLAGS_quantizer != "repq") {
    throw UsageError("--fold_prior=" + FLAGS_fold_prior +
                     " applies to --quantizer=repq only (psaq has no folded points)");
  }
  if (detect::IsDetectorFile(FLAGS_model)) {
    if (method == "v1" && FLAGS_v1_teacher.empty()) {
      throw UsageError("--method=v1 on a detector needs --v1_teacher (a classification model "
                       "whose V1 samples are mapped to the detector's input)");
    }
    if (method == "v1" && detect::IsDetectorFile(FLAGS_v1_teacher)) {
      throw UsageError("--v1_teacher=" + FLAGS_v1_teacher +
                       ": is a detector; V1 needs a classification model");
    }
    for (const char* flag : {"v2_discrepancy", "v2_temperature"}) {
      if (IsSet(flag)) {
        throw UsageError("--" + std::string(flag) + " applies to classifiers; a detector's "
                         "discrepancy is --v2_detector_discrepancy");
      }
    }
    if (FLAGS_quantizer == "repq") {
      throw UsageError("--quantizer=repq is not supported for detectors; use --quantizer=psaq");
    }
    if ((method == "noise" || method == "v1" || method == "v2") && FLAGS_image_size == 0) {
      throw UsageError("--method=" + method +
                       " on a detector needs --image_size (the samples' side)");
    }
    if (method == "real" && !model::IsDetectionDataset(FLAGS_dataset)) {
      throw UsageError("--dataset=" + FLAGS_dataset + ": " + FLAGS_model +
                       " is a detector: calibrate it on a COCO instances JSON file");
    }
    if (!FLAGS_eval_dataset.empty() && !model::IsDetectionDataset(FLAGS_eval_dataset)) {
      throw UsageError("--eval_dataset=" + FLAGS_eval_dataset + ": " + FLAGS_model +
                       " is a detector: evaluate it on a COCO instances JSON file");
    }
  }
}

}  // namespace

std::vector<std::string> JobFlagNames(JobKind kind) {
  std::vector<std::string> names;
  for (const JobFlag& flag : JobFlags()) {
    if (kind == JobKind::kQuantize || flag.generate) names.push_back(flag.name);
  }
  return names;
}

void CheckJobFlags(JobKind kind) {
  const std::string& method = FLAGS_method;
  CheckCombinations(kind, method);
  for (const JobFlag& flag : JobFlags()) {
    if (flag.scope != Scope::kAll && !Applies(flag.scope, kind, method) && IsSet(flag.name) &&
        (kind == JobKind::kQuantize || flag.generate)) {
      throw UsageError("--" + std::string(flag.name) + " applies to " + Where(flag.scope) +
                       " only");
    }
  }
  if (FLAGS_v1_official && IsSet("tv_weight")) {
    throw UsageError("--v1_official sets the paper's TV weight 0.05; leave out --tv_weight");
  }
  if (FLAGS_v1_warmup > FLAGS_v1_iterations) {
    throw UsageError("--v1_warmup (" + std::to_string(FLAGS_v1_warmup) +
                     ") must not exceed --v1_iterations (" + std::to_string(FLAGS_v1_iterations) +
                     ")");
  }
  gen::V2Options v2;
  v2.rounds = FLAGS_v2_rounds;
  v2.sample_iterations = FLAGS_v2_sample_iterations;
  v2.image_schedule = gen::ParseImageSchedule(FLAGS_v2_image_schedule);
  const int64_t period = gen::ImageSchedulePeriod(v2);
  if (method == "v2" && FLAGS_v2_image_warmup > period) {
    throw UsageError("--v2_image_warmup (" + std::to_string(FLAGS_v2_image_warmup) +
                     ") must not exceed the image schedule's length (" + std::to_string(period) +
                     " steps with --v2_image_schedule=" + FLAGS_v2_image_schedule + ")");
  }
  if (method == "v2" && JitterLimits().size() > 1) {
    throw UsageError(
        "--jitter_limits takes one value with --method=v2 (its rounds have no epochs)");
  }
}

namespace {

// "psaq quantize --model=..." as typed, for the output directory's lock (gflags keeps argv
// without the subcommand, which psaq_main removed).
std::string CommandLine(JobKind kind) {
  const std::vector<std::string>& argv = gflags::GetArgvs();
  std::string line;
  for (size_t i = 0; i < argv.size(); ++i) {
    line += (i == 0 ? "" : " ") + argv[i];
    if (i == 0) line += kind == JobKind::kQuantize ? " quantize" : " generate";
  }
  return line;
}

}  // namespace

job::QuantizeJobOptions JobOptionsFromFlags(JobKind kind, const std::string& device) {
  job::QuantizeJobOptions o;
  for (const JobFlag& flag : JobFlags()) {
    if (flag.apply && (kind == JobKind::kQuantize || flag.generate)) flag.apply(o);
  }
  o.device = device;
  o.command = CommandLine(kind);
  o.real.split = IsSet("split") ? FLAGS_split : "train";  // PSAQ calibrates on training images
  if (kind == JobKind::kGenerate) o.eval = {};
  job::ValidateJobOptions(o);
  return o;
}

}  // namespace psaq::launch
