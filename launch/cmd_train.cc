// psaq train: trains a ViT or Swin from scratch on a labelled dataset, data-parallel over the
// ranks (launch/train/train.h), evaluates it on the test images and writes the weights with a record of
// how they were made (launch/train_record.h).
#include <cstdio>
#include <string>
#include <vector>

#include "dist/base/atomic_file.h"
#include "dist/logging.h"
#include "launch/flags.h"
#include "launch/inputs.h"
#include "launch/process.h"
#include "launch/shared_flags.h"
#include "launch/train/train.h"
#include "launch/train_record.h"
#include "model/data/dataset_by_name.h"
#include "model/registry.h"
#include "quant/evaluate.h"

DEFINE_string(task, "classify",
              "classify (a ViT/Swin classifier) or detect (a Swin Mask R-CNN on a COCO-format "
              "--dataset; launch/cmd_train_detect.cc).");
DEFINE_string(arch, "", "Architecture: vit (ViT/DeiT) or swin.");
DEFINE_string(config_json, "",
              "timm constructor kwargs as a JSON object, e.g. '{\"img_size\":28,\"patch_size\":4,"
              "\"in_chans\":1,\"num_classes\":10,\"embed_dim\":64,\"depth\":4,\"num_heads\":2}' "
              "(missing keys take timm's defaults).");
DEFINE_string(mean, "0.2860",
              "Normalisation mean per channel, comma-separated, in [0, 1] pixel "
              "units (one value for all channels allowed). Fashion-MNIST: 0.2860.");
DEFINE_string(std, "0.3530", "Normalisation std per channel, as --mean. Fashion-MNIST: 0.3530.");
DEFINE_string(output, "", "Write the trained weights here (.safetensors, with metadata).");
DEFINE_string(name, "", "The model's name in the metadata (default: --output's file stem).");
DEFINE_int32(epochs, 30, "Passes over the training images.");
DEFINE_int32(global_batch_size, 256,
             "Images per optimiser step over all ranks together (each rank takes its share).");
DEFINE_double(lr, 1e-3, "Peak learning rate of AdamW.");
DEFINE_double(min_lr, 1e-5, "Learning rate the cosine decays to (--schedule=cosine).");
DEFINE_string(schedule, "cosine",
              "Learning-rate curve: cosine (linear warm-up, then cosine) or "
              "one_cycle (PyTorch's OneCycleLR).");
DEFINE_double(warmup_epochs, 1.0, "Linear warm-up length in epochs (--schedule=cosine).");
DEFINE_double(weight_decay, 0.05, "AdamW decoupled weight decay, on matrices only.");
DEFINE_double(label_smoothing, 0.1, "Label smoothing of the cross-entropy, in [0, 1).");
DEFINE_int32(pad, 2, "Random-crop padding in pixels per side (0 = no random crop).");
DEFINE_string(pad_mode, "constant", "Random-crop padding: constant (black) or reflect.");
DEFINE_double(flip_prob, 0.5, "Probability of a horizontal flip.");
DEFINE_int32(eval_every, 1, "Evaluate the test images every N epochs (0 = at the end only).");
DEFINE_int32(log_every, 50, "Log progress every N steps (0 = at epoch ends only).");
DEFINE_int64(max_steps, 0,
             "Stop after N optimiser steps (the schedule still spans --epochs), for smoke tests; "
             "0 = train every epoch.");
DEFINE_validator(epochs, &psaq::launch::AtLeast<1>);
DEFINE_validator(global_batch_size, &psaq::launch::AtLeast<1>);
DEFINE_validator(pad, &psaq::launch::AtLeast<0>);
DEFINE_validator(eval_every, &psaq::launch::AtLeast<0>);
DEFINE_validator(log_every, &psaq::launch::AtLeast<0>);
DEFINE_validator(max_steps, &psaq::launch::AtLeast64<0>);

namespace {

bool ValidateSmoothing(const char* flag, double v) {
  return psaq::launch::CheckInHalfOpenRange(flag, v, 0.0, 1.0);
}
bool ValidateSchedule(const char* flag, const std::string& v) {
  return psaq::launch::CheckOneOf(flag, v, {"cosine", "one_cycle"});
}
bool ValidatePadMode(const char* flag, const std::string& v) {
  return psaq::launch::CheckOneOf(flag, v, {"constant", "reflect"});
}
bool ValidateTask(const char* flag, const std::string& v) {
  return psaq::launch::CheckOneOf(flag, v, {"classify", "detect"});
}
bool ValidateArch(const char* flag, const std::string& v) {
  return v.empty() || psaq::launch::CheckOneOf(flag, v, {"vit", "swin"});
}

}  // namespace

DEFINE_validator(lr, &psaq::launch::PositiveDouble);
DEFINE_validator(min_lr, &psaq::launch::NonNegativeDouble);
DEFINE_validator(warmup_epochs, &psaq::launch::NonNegativeDouble);
DEFINE_validator(weight_decay, &psaq::launch::NonNegativeDouble);
DEFINE_validator(label_smoothing, &ValidateSmoothing);
DEFINE_validator(flip_prob, &psaq::launch::Probability);
DEFINE_validator(schedule, &ValidateSchedule);
DEFINE_validator(pad_mode, &ValidatePadMode);
DEFINE_validator(arch, &ValidateArch);
DEFINE_validator(task, &ValidateTask);

namespace psaq::launch {

void CheckDetectTrainFlags();
int RunDetectTrain(ProcessContext& process);

namespace {

// The options of train::Train from the flags; ValidateTrainOptions throws for a bad value.
train::TrainOptions TrainOptionsFromFlags() {
  train::TrainOptions o;
  o.epochs = FLAGS_epochs;
  o.batch_size = FLAGS_global_batch_size;
  o.lr.shape = train::ParseLrShape(FLAGS_schedule);
  o.lr.peak_lr = FLAGS_lr;
  o.lr.final_lr = FLAGS_min_lr;
  o.warmup_epochs = o.lr.shape == train::LrShape::kWarmupCosine ? FLAGS_warmup_epochs : 0.0;
  o.adamw.weight_decay = FLAGS_weight_decay;
  o.label_smoothing = FLAGS_label_smoothing;
  o.augment.pad = FLAGS_pad;
  o.augment.pad_mode = train::ParsePadMode(FLAGS_pad_mode);
  o.augment.flip_prob = FLAGS_flip_prob;
  o.seed = FLAGS_seed;
  o.eval_every_epochs = FLAGS_eval_every;
  o.eval_batch_size = FLAGS_batch_size;
  o.log_every_steps = FLAGS_log_every;
  o.max_steps = FLAGS_max_steps;
  return o;
}

}  // namespace

void CheckTrainFlags() {
  // Flags of the other task are refused rather than ignored.
  const bool detect = FLAGS_task == "detect";
  for (const char* flag : detect ? std::vector<const char*>{"arch", "mean", "std", "label_smoothing",
                                                             "pad", "pad_mode", "eval_dataset"}
                                 : std::vector<const char*>{"val_dataset", "val_images",
                                                             "clip_grad_norm", "checkpoint_steps",
                                                             "resume", "rcnn_rois_per_image"}) {
    if (!gflags::GetCommandLineFlagInfoOrDie(flag).is_default) {
      throw UsageError(std::string("--") + flag + " does not apply to --task=" + FLAGS_task);
    }
  }
  if (detect) return CheckDetectTrainFlags();
  if (FLAGS_arch.empty()) throw UsageError("--arch is required (vit or swin)");
  if (FLAGS_config_json.empty()) throw UsageError("--config_json is required");
  if (FLAGS_output.empty()) throw UsageError("--output is required");
  if (FLAGS_dataset.empty()) throw UsageError("--dataset is required");
  if (FLAGS_dataset != "fashion_mnist" && FLAGS_eval_dataset.empty()) {
    throw UsageError("--eval_dataset is required when --dataset is an ImageFolder");
  }
  try {
    TrainModelConfigFromFlags(FLAGS_arch, FLAGS_config_json, FLAGS_mean, FLAGS_std, FLAGS_name,
                              FLAGS_output);
    train::ValidateTrainOptions(TrainOptionsFromFlags());
  } catch (const std::exception& e) {
    throw UsageError(e.what());
  }
}

int RunTrain(ProcessContext& process) {
  if (FLAGS_task == "detect") return RunDetectTrain(process);
  if (process.is_root()) base::CheckWritable("--output", FLAGS_output);
  const model::ModelConfig config = TrainModelConfigFromFlags(
      FLAGS_arch, FLAGS_config_json, FLAGS_mean, FLAGS_std, FLAGS_name, FLAGS_output);
  const auto train_set = model::OpenImageDataset(FLAGS_dataset, FLAGS_dataset_dir, "train");
  const auto test_set = FLAGS_eval_dataset.empty()
                            ? model::OpenImageDataset(FLAGS_dataset, FLAGS_dataset_dir, "test")
                            : model::OpenImageDataset(FLAGS_eval_dataset, FLAGS_dataset_dir, "test");
  at::manual_seed(FLAGS_seed);  // the initial weights (rank 0's are broadcast by Train)
  model::ModelPtr model = model::CreateModel(config);
  model->to(process.device());
  dist::Communicator& comm = process.device_comm();

  const train::TrainOptions options = TrainOptionsFromFlags();
  const train::TrainResult result = train::Train(*model, *train_set, test_set.get(), options, &comm);

  // The recorded accuracy: psaq eval's procedure on the trained weights, every test image.
  quant::EvalOptions eval;
  eval.batch_size = FLAGS_batch_size;
  eval.device = process.device();
  const quant::EvalResult test = quant::Evaluate(
      comm, [&](const at::Tensor& x) { return model->forward(x); }, *test_set, config, eval);

  if (process.is_root()) {
    TrainRecord record;
    record.command = TrainCommandLine(process.size());
    record.world_size = process.size();
    record.options = options;
    record.result = result;
    record.train_set = train_set.get();
    record.test_set = test_set.get();
    record.test_top1_percent = 100.0 * test.top1();
    record.test_images = test.images;
    WriteTrainedModel(FLAGS_output, *model, record);
    std::fputs(TrainSummary(*model, record).c_str(), stdout);
    std::fflush(stdout);
    LOG(INFO) << "wrote " << FLAGS_output;
  }
  return 0;
}

}  // namespace psaq::launch
