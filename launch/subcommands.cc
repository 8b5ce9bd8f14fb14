// The table of `psaq` subcommands (see launch/subcommand.h for how to add one).
#include "launch/job_flags.h"
#include "launch/process.h"
#include "launch/subcommand.h"

namespace psaq::launch {

// Each subcommand's two entry points, defined in its launch/cmd_<name>.cc.
void CheckBenchFlags();
int RunBench(ProcessContext& process);
void CheckEvalFlags();
int RunEval(ProcessContext& process);
void CheckGenerateFlags();
int RunGenerate(ProcessContext& process);
void CheckMakeScenesFlags();
int RunMakeScenes(ProcessContext& process);
void CheckInspectFlags();
int RunInspect(ProcessContext& process);
void CheckQuantizeFlags();
int RunQuantize(ProcessContext& process);
void CheckStudyFlags();
int RunStudy(ProcessContext& process);
void CheckTrainFlags();
int RunTrain(ProcessContext& process);

const std::vector<Subcommand>& Subcommands() {
  static const std::vector<Subcommand> table = {
      // name, summary, usage, flags (own, then shared), flag checks, run
      {"bench",
       "Time generation steps (V1 with/without entropy, V2 sample and student steps) and the "
       "evaluation forward",
       "[mpirun -np N] psaq bench --model=<preset|weights.safetensors> --batch_size=32 "
       "[--device=cuda]",
       {"steps", "warmup_steps", "methods", "entropy_impls", "profile", "profile_top",  //
        "model", "batch_size", "seed", "device"},
       &CheckBenchFlags,
       &RunBench},
      {"eval",
       "Top-1/top-5 accuracy of a float or quantized model on labelled images; a detector's COCO "
       "box/mask AP",
       "[mpirun -np N] psaq eval --model=<preset|weights.safetensors|export.safetensors> "
       "--dataset=<fashion_mnist|ImageFolder root|instances.json> [--json_out=FILE]",
       {"max_images", "json_out", "sqnr_batches", "detections_out",  //
        "model", "dataset", "dataset_dir", "split", "batch_size", "on_bad_image", "device"},
       &CheckEvalFlags,
       &RunEval},
      {"generate",
       "Data-free calibration samples (PSAQ-ViT V1/V2, noise or real images), a shard per rank",
       "[mpirun -np N] psaq generate --model=<preset|weights.safetensors> --method=v1|v2|noise|real "
       "--num_samples=N --output_dir=DIR",
       JobFlagNames(JobKind::kGenerate),
       &CheckGenerateFlags,
       &RunGenerate},
      {"inspect",
       "Describe a weights file or a quantized export, or compare its ranges with real images",
       "psaq inspect --file=<weights.safetensors|export.safetensors> [--tensors] "
       "[--w_bits --a_bits --quant_scope: a float detector] | "
       "--compare=<export.safetensors|run dir> --dataset=<fashion_mnist|ImageFolder root>",
       {"file", "tensors", "compare", "compare_images", "compare_rows", "compare_json",  //
        "dataset", "dataset_dir", "split", "batch_size", "w_bits", "a_bits", "quant_scope"},
       &CheckInspectFlags,
       &RunInspect},
      {"make-scenes",
       "Write a deterministic COCO-format detection set of Fashion-MNIST items (PNG + JSON)",
       "psaq make-scenes --split=train|val --num_images=N --out_dir=DIR [--seed=S]",
       {"num_images", "out_dir", "canvas_size",  //
        "split", "seed", "dataset_dir"},
       &CheckMakeScenesFlags,
       &RunMakeScenes},
      {"quantize",
       "Quantize a float model with data-free (V2, V1) or noise/real/file calibration, export it",
       "[mpirun -np N] psaq quantize --model=<preset|weights.safetensors> --method=v2 "
       "--w_bits=4 --a_bits=8 --num_samples=N --output_dir=DIR [--eval_dataset=fashion_mnist]",
       JobFlagNames(JobKind::kQuantize),
       &CheckQuantizeFlags,
       &RunQuantize},
      {"study",
       "A scaling study's plan, results (CSV) and communication model; cluster/study.sh runs it",
       "psaq study --action=plan|collect|model --study=study.json",
       {"action", "study", "zoo_dir", "bus_gbps", "latency_us", "predict_ranks", "reference_cell",
        "compute_seconds", "cores"},
       &CheckStudyFlags,
       &RunStudy},
      {"train",
       "Train a ViT or Swin from scratch on labelled images (--task=detect: a Swin Mask R-CNN on "
       "COCO-format data), data-parallel over the ranks",
       "[mpirun -np N] psaq train --arch=vit|swin --config_json='{...}' --dataset=fashion_mnist "
       "--output=model.safetensors",
       {"arch", "config_json", "mean", "std", "output", "name", "epochs", "global_batch_size",
        "lr", "min_lr", "schedule", "warmup_epochs", "weight_decay", "label_smoothing", "pad",
        "pad_mode", "flip_prob", "eval_every", "log_every", "max_steps", "task", "val_dataset",
        "val_images", "clip_grad_norm", "checkpoint_steps", "resume", "rcnn_rois_per_image",  //
        "dataset", "dataset_dir", "batch_size", "seed", "eval_dataset", "device"},
       &CheckTrainFlags,
       &RunTrain},
  };
  return table;
}

const Subcommand* FindSubcommand(const std::string& name) {
  for (const Subcommand& sub : Subcommands()) {
    if (sub.name == name) return &sub;
  }
  return nullptr;
}

}  // namespace psaq::launch
