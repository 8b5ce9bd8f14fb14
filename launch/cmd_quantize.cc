// psaq quantize: calibration samples (generated V1/V2, noise, real images, or an earlier run's
// files) -> calibrated quantized model -> export, across the ranks (gen/quantize_job.h).
// The flags here are also those of `psaq generate` (launch/cmd_generate.cc), which stops after the
// samples; launch/job_command.h turns them into gen::QuantizeJobOptions.
#include "launch/flags.h"
#include "launch/job_command.h"
#include "launch/process.h"

// --- The job --------------------------------------------------------------------------------
DEFINE_string(method, "v2",
              "Where the calibration samples come from: v2 (PSAQ-ViT V2 reconstruction: samples "
              "and the quantized student evolve in rounds; the exported model is the student), "
              "v1 (PSAQ-ViT V1 patch-similarity generation), noise (N(0,1) images), real "
              "(training images of --dataset), or files (quantize only: the samples of an "
              "earlier run, --sample_files).");
DEFINE_int64(num_samples, 32,
             "Calibration samples in total over all ranks; rank r makes its contiguous share. "
             "With a multiple of ranks x --samples_per_batch every batch is full and V1/V2 "
             "samples do not depend on the number of ranks.");
DEFINE_int64(samples_per_batch, 32,
             "Samples per generation batch (one optimisation problem: the KDE grid and the TV "
             "term span the batch; PSAQ uses 32) and per calibration forward pass.");
DEFINE_string(output_dir, "",
              "Directory for the run (created): samples/, checkpoint/ while unfinished, "
              "model.safetensors + model.manifest.json (quantize), report.json (written last).");
DEFINE_bool(resume, false,
            "Continue the unfinished run in --output_dir from its checkpoint (start afresh when "
            "there is none). Without it, a directory holding a checkpoint is refused.");
DEFINE_bool(overwrite, false,
            "Replace a finished or unfinished run in --output_dir (its samples, checkpoint, model "
            "and report) and start afresh.");
DEFINE_int64(checkpoint_every, 100,
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
DEFINE_int32(w_bits, 8,
             "Weight bits (2-8; 32 = float weights): symmetric per output channel. For generate, "
             "the bits of V2's student.");
DEFINE_int32(a_bits, 8,
             "Activation bits (2-8; 32 = float activations): asymmetric per tensor from the "
             "calibration min/max, at every quantization point of the model.");
DEFINE_string(input_range, "calibrated",
              "Range of the input image's quantizer: calibrated (the calibration images' min/max, "
              "as PSAQ) or pixel_box (every valid image: [(0 - mean)/std, (1 - mean)/std] over "
              "the channels), for samples dimmer than real images.");

// --- V1 (PSAQ-ViT, official values) ---------------------------------------------------------
DEFINE_int32(v1_epochs, 2, "V1: epochs of the image schedule per batch (official 2).");
DEFINE_int32(v1_iterations, 500, "V1: Adam steps per epoch (official 500).");
DEFINE_int32(v1_warmup, 100, "V1: linear warm-up steps at the start of each epoch (official 100).");
DEFINE_double(image_lr, 0.0,
              "Peak learning rate of the image Adam (V1 and V2); 0 = the official value for the "
              "architecture (0.25 Swin, 0.20 ViT/DeiT).");
DEFINE_string(jitter_limits, "",
              "Roll jitter limits in pixels per V1 epoch, comma-separated, e.g. '3,6' (the last "
              "applies to later epochs); empty = the official 15,30 at 224 px scaled to the image "
              "size.");
DEFINE_double(entropy_weight, 1.0, "Weight of the patch-similarity entropy term (V1 and V2).");
DEFINE_double(ce_weight, 1.0, "V1: weight of the cross-entropy with random labels (official 1).");
DEFINE_double(tv_weight, 0.05, "Weight of the total-variation target term (V1 and V2; official 0.05).");
DEFINE_double(kde_bandwidth, 0.01,
              "Bandwidth h of the Gaussian KDE of patch similarities (official 0.01).");
DEFINE_string(entropy_impl, "fused",
              "Patch-similarity entropy implementation: fused (no (B, 10, M) kernel tensor; "
              "matches the reference to 1e-9 in float64) or reference (the official formulation).");

// --- V2 (reconstruction; see README) --------------------------------------------------------
DEFINE_int32(v2_rounds, 10, "V2: rounds, each a sample step then a student step.");
DEFINE_int32(v2_sample_iterations, 50, "V2: image Adam steps per round on every batch.");
DEFINE_int32(v2_image_warmup, 10,
             "V2: linear warm-up steps of the image learning rate (per round with per_round; at "
             "the start with global).");
DEFINE_int32(v2_student_iterations, 50, "V2: student Adam steps per round.");
DEFINE_int32(v2_warmup_iterations, 0,
             "V2: V1-style steps (entropy + TV, no labels) before the first calibration; 0 = "
             "calibrate the student on the initial noise.");
DEFINE_double(v2_adversarial_weight, 1.0,
              "V2: λ, the weight of -D(teacher, student) in the sample loss (0 = samples ignore "
              "the student).");
DEFINE_double(v2_student_lr, 1e-5, "V2: learning rate of the student's Adam.");
DEFINE_string(v2_student_update, "latent_weights",
              "V2: latent_weights (Adam on the student's latent float weights through the "
              "straight-through quantizer) or recalibrate_only (no weight update; only the "
              "activation ranges follow the samples).");
DEFINE_bool(v2_train_biases, false, "V2: the student step also trains the biases.");
DEFINE_bool(v2_train_norms, false, "V2: the student step also trains the LayerNorms.");
DEFINE_bool(v2_recalibrate_each_round, true,
            "V2: re-calibrate the student's activation ranges on the current samples after every "
            "round (merged over ranks).");
DEFINE_string(v2_discrepancy, "kl_logits",
              "V2: the teacher-student discrepancy D: kl_logits (KL of the softmax outputs) or "
              "mse_features (block outputs; for backbones without a classifier).");
DEFINE_double(v2_temperature, 1.0, "V2: temperature τ of kl_logits.");
DEFINE_string(v2_image_schedule, "per_round",
              "V2: image learning-rate schedule: per_round (V1's warm-up + cosine restarted every "
              "round) or global (one over all rounds).");

namespace {

bool ValidateBits(const char* flag, int32_t v) {
  return (v >= 2 && v <= 8) || v == 32 ||
         psaq::launch::RefuseFlag(flag, "must be 2-8, or 32 for no quantization, got " +
                                            std::to_string(v));
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
bool ValidateCheckpointEvery(const char* flag, int64_t v) {
  return v >= -1 || psaq::launch::RefuseFlag(flag, "must be >= 1, 0 or -1, got " + std::to_string(v));
}

}  // namespace

DEFINE_validator(method, &ValidateMethod);
DEFINE_validator(num_samples, &psaq::launch::AtLeast64<1>);
DEFINE_validator(samples_per_batch, &psaq::launch::AtLeast64<1>);
DEFINE_validator(checkpoint_every, &ValidateCheckpointEvery);
DEFINE_validator(progress_seconds, &psaq::launch::NonNegativeDouble);
DEFINE_validator(w_bits, &ValidateBits);
DEFINE_validator(a_bits, &ValidateBits);
DEFINE_validator(input_range, &ValidateInputRange);
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

void CheckQuantizeFlags() { CheckJobFlags(JobKind::kQuantize); }

int RunQuantize(ProcessContext& process) { return RunJobCommand(process, JobKind::kQuantize); }

}  // namespace psaq::launch
