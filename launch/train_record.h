// What `psaq train` writes: the model to train from its flags, and the trained weights file with a
// record of how it was made, so that a shipped model can be checked and reproduced.
//
// Metadata of the weights file (all values strings), on top of model::ConfigToMetadata's "arch",
// "config", "preprocess" and "name":
//   "psaq_version"         the version that trained it
//   "train_command"        the command as typed: "mpirun -np N " (N > 1) + argv, shell-quoted
//   "train_flags"          JSON object: the value of every `psaq train` flag (defaults included)
//   "train_world_size"     ranks
//   "train_seed"           --seed
//   "train_epochs"         epochs trained
//   "train_steps"          optimiser steps
//   "train_seconds"        wall time of training (evaluations included), seconds
//   "train_data"           Describe() of the training set
//   "train_data_checksum"  "crc32:xxxxxxxx" (model::ImageDataset::ContentChecksum)
//   "test_data"            Describe() of the evaluation set
//   "test_data_checksum"   likewise
//   "test_images"          images evaluated
//   "test_top1"            top-1 of the final weights on those images, percent, 2 decimals
//                          ("90.12"), measured by quant::Evaluate as `psaq eval` does
//   "train_history"        JSON array, one object per epoch: epoch, loss, train_top1, test_top1
//                          (null when not evaluated), lr, seconds
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "launch/train/train.h"
#include "model/config.h"
#include "model/data/dataset.h"
#include "model/vision_model.h"

namespace psaq::launch {

// The model config for --arch, --config_json (timm kwargs), --mean/--std (comma-separated) and
// --name (default: the stem of `output`): crop_pct 1 (the training images are used at their own
// size). Throws std::runtime_error / std::invalid_argument with the reason for an invalid config,
// bad numbers, and for non-zero dropout or drop-path kwargs (psaq's models have neither, so they
// cannot be trained with them).
model::ModelConfig TrainModelConfigFromFlags(const std::string& arch,
                                             const std::string& config_json,
                                             const std::string& mean, const std::string& std,
                                             const std::string& name, const std::string& output);

// "mpirun -np <world_size> " (when world_size > 1) + gflags' argv of this process with the
// subcommand put back after argv[0], each argument shell-quoted when needed.
std::string TrainCommandLine(int world_size);

struct TrainRecord {
  std::string command;  // TrainCommandLine
  int world_size = 1;
  train::TrainOptions options;
  train::TrainResult result;
  const model::ImageDataset* train_set = nullptr;  // REQUIRES non-null
  const model::ImageDataset* test_set = nullptr;   // REQUIRES non-null
  double test_top1_percent = 0;                    // final evaluation
  int64_t test_images = 0;
};

// The metadata above for `record` (plus the model's config). Reads the datasets' checksums.
std::map<std::string, std::string> TrainMetadata(const model::VisionModel& model,
                                                 const TrainRecord& record);

// Writes the model's state dict (float, in state-dict order) with TrainMetadata atomically to
// `path`. Throws model::SafetensorsError naming the path on failure.
void WriteTrainedModel(const std::string& path, const model::VisionModel& model,
                       const TrainRecord& record);

// The end-of-run report: a table of the epochs, then the model, data, final top-1 and time.
std::string TrainSummary(const model::VisionModel& model, const TrainRecord& record);

}  // namespace psaq::launch
