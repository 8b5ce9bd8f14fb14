// The table of `psaq` subcommands (see launch/subcommand.h for how to add one).
#include "launch/process.h"
#include "launch/subcommand.h"

namespace psaq::launch {

// Each subcommand's two entry points, defined in its launch/cmd_<name>.cc.
void CheckEvalFlags();
int RunEval(ProcessContext& process);
void CheckInspectFlags();
int RunInspect(ProcessContext& process);
void CheckTrainFlags();
int RunTrain(ProcessContext& process);

const std::vector<Subcommand>& Subcommands() {
  static const std::vector<Subcommand> table = {
      // name, summary, usage, flags file, shared flags, flag checks, run
      {"eval",
       "Top-1/top-5 accuracy of a float or quantized model on labelled images",
       "[mpirun -np N] psaq eval --model=<preset|weights.safetensors|export.safetensors> "
       "--dataset=<fashion_mnist|ImageFolder root> [--json_out=FILE]",
       "cmd_eval.cc",
       {"model", "dataset", "dataset_dir", "split", "batch_size", "on_bad_image", "device"},
       &CheckEvalFlags,
       &RunEval},
      {"inspect",
       "Describe a weights file or a quantized export",
       "psaq inspect --file=<weights.safetensors|export.safetensors> [--tensors]",
       "cmd_inspect.cc",
       {},
       &CheckInspectFlags,
       &RunInspect},
      {"train",
       "Train a ViT or Swin from scratch on labelled images, data-parallel over the ranks",
       "[mpirun -np N] psaq train --arch=vit|swin --config_json='{...}' --dataset=fashion_mnist "
       "--output=model.safetensors",
       "cmd_train.cc",
       {"dataset", "dataset_dir", "batch_size", "device"},
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
