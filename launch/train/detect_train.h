// Data-parallel training of the Swin Mask R-CNN (model/detect/) on a COCO-format set, and its
// COCO box/mask AP on a validation set, sharded over ranks.
//
//   data::CocoDataset train_set("scenes/instances_train.json", "");
//   detect::MaskRcnn model(config);              // same seed on every rank (rank 0's broadcast)
//   DetectTrainResult r = TrainDetector(model, train_set, &val, options, &comm);
//
// One step, on every rank (as launch/train/train.h's classifier training):
//   1. the global batch is the next `batch_size` indices of EpochOrder(n, seed, epoch);
//   2. rank r takes its contiguous share dist::ShardRange(batch, world, r), decodes each image,
//      flips it horizontally (image, boxes, masks) with probability flip_prob, normalises it with
//      the config's mean/std and pads the batch at the bottom/right with 0 to a multiple of the
//      size divisor (mmdet's DetDataPreprocessor); the flip and the anchor/RoI sampling of an
//      image are drawn from seeds derived from (seed, epoch, position in the global order), so
//      they do not depend on the rank;
//   3. the losses (model/detect/detector_loss.h) are computed as sums and counts; the counts and
//      sums are all-reduced, each rank back-propagates  sum_i local_sum_i / global_count_i  and
//      the gradients are summed over ranks: every rank holds the gradient of the global batch's
//      loss exactly as one process computing it on the whole batch would (up to summation order);
//   4. optional gradient-norm clipping, then the same AdamW step (decay on matrices only) at the
//      schedule's learning rate (warm-up + cosine, launch/train/train_schedule.h) on every rank.
// Crowd annotations are left out of the targets (mmdet without ignore regions).
//
// Checkpoints (when checkpoint_dir is set): rank 0 writes <dir>/model.safetensors,
// <dir>/optimizer.pt and <dir>/state.json (steps done, per-epoch history, the current epoch's
// running sums) every checkpoint_every_steps steps, at every epoch end and when max_steps stops
// the run. With resume, training continues from <dir>'s state when there is one (every rank
// reads it): the result equals the uninterrupted run's, since the data order, flips and samples
// are functions of (seed, epoch, position).
//
// Collective when comm is non-null: every rank passes the same model architecture, data, options.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "dist/grad_sync.h"
#include "launch/train/train_optimizer.h"
#include "launch/train/train_schedule.h"
#include "model/data/coco_dataset.h"
#include "model/data/coco_eval.h"
#include "model/detect/detector_loss.h"
#include "model/detect/mask_rcnn.h"

namespace psaq::train {

struct DetectTrainOptions {
  // mmdet's train_cfg (assigners, samplers, training proposals). Default mask_rcnn_r50_fpn's.
  detect::DetectorTrainConfig train_config;
  // Passes over the training set (>= 1). Default 12 (mmdet's 1x schedule).
  int epochs = 12;
  // Images per optimiser step over all ranks (>= 1, <= the training-set size). Default 16.
  int64_t batch_size = 16;
  // Learning-rate curve (kWarmupCosine; total_steps and, from warmup_epochs, warmup_steps are
  // filled in). Default peak 1e-4 (mmdet's Swin Mask R-CNN AdamW), final 1e-6.
  TrainLrOptions lr = {LrShape::kWarmupCosine, 1e-4, 1, 0, 1e-6};
  // Linear warm-up in epochs, [0, epochs). Default 0.5.
  double warmup_epochs = 0.5;
  // AdamW (weight decay 0.05 on matrices, as mmdet's Swin config). Default as AdamWConfig.
  AdamWConfig adamw;
  // Probability of a horizontal flip per image, [0, 1]. Default 0.5 (mmdet's RandomFlip).
  double flip_prob = 0.5;
  // Clip the gradient's global L2 norm to this (> 0); 0 = no clipping. Default 0.
  double clip_grad_norm = 0;
  // Seed of the data order, flips and samples (the initial weights are the caller's). Default 0.
  uint64_t seed = 0;
  dist::GradSyncOptions grad_sync;  // `reduce` forced to kSum
  // Log progress on rank 0 every N steps (and at epoch ends); 0 = epoch ends only. Default 20.
  int log_every_steps = 20;
  // Stop after this many steps in total (the schedule still spans every epoch); 0 = no limit.
  int64_t max_steps = 0;
  // Validation (when a validation set is given): every N epochs on the first eval_images images
  // (0 = all), and on every image after the last epoch. eval_every_epochs 0 = last epoch only.
  int eval_every_epochs = 0;
  int64_t eval_images = 0;
  int64_t eval_batch_size = 8;  // images per forward, per rank (>= 1)
  // Checkpoint directory ("" = no checkpoints), period in steps (>= 1; epoch ends always
  // checkpoint) and whether to resume from it (see above).
  std::string checkpoint_dir;
  int64_t checkpoint_every_steps = 200;
  bool resume = false;
};

// Throws std::invalid_argument naming the field for a value outside its documented range.
void ValidateDetectTrainOptions(const DetectTrainOptions& options);

struct DetectEvalResult {
  data::CocoStats box;
  data::CocoStats mask;
};

// Collective when comm is non-null. COCO box and mask AP of `model` on the first max_images
// images of val (0 = all): quant::EvaluateDetector (the evaluation of `psaq eval`, so a recorded
// AP is what psaq eval reproduces) over comm, or over one process when comm is null, in batches of
// batch_size. The model's train/eval mode is restored. Throws as quant::EvaluateDetector.
DetectEvalResult EvaluateDetector(detect::MaskRcnn& model, const data::CocoDataset& val,
                                  int64_t max_images, int64_t batch_size,
                                  dist::Communicator* comm);

struct DetectEpochStats {
  int epoch = 0;      // 1-based
  int64_t steps = 0;  // steps of this epoch
  // Mean over the epoch's steps of the global batch's losses: DetectorLosses::Names() order.
  std::array<double, detect::DetectorLosses::kNumTerms> terms{};
  double loss = 0;     // their sum
  double lr = 0;       // of the epoch's last step
  double seconds = 0;  // wall time of the epoch's steps (evaluation excluded; this run only)
  bool evaluated = false;
  int64_t eval_images = 0;
  double box_ap = 0, box_ap50 = 0, mask_ap = 0;
};

struct DetectTrainResult {
  std::vector<DetectEpochStats> epochs;  // completed epochs (resumed ones included)
  int64_t steps = 0;                     // steps in total (resumed ones included)
  double seconds = 0;                    // wall time of this call
  bool finished = false;                 // every step of every epoch done (not cut by max_steps)
  bool evaluated = false;                // final evaluation on every val image done
  DetectEvalResult final_eval;
};

// Collective when comm is non-null. Trains `model` in place (CPU float32, or comm's device) and
// leaves it in eval mode; val may be null. Throws std::invalid_argument for invalid options
// (before any collective), std::runtime_error naming an image that fails to decode, a
// non-finite loss (with the epoch and step) or an unreadable checkpoint.
DetectTrainResult TrainDetector(detect::MaskRcnn& model, const data::CocoDataset& train_set,
                                const data::CocoDataset* val, const DetectTrainOptions& options,
                                dist::Communicator* comm);

}  // namespace psaq::train
