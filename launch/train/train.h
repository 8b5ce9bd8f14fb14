// Data-parallel supervised training of a float model from scratch (to make teachers for the
// data-free pipeline), and a minimal sharded top-1 evaluation.
//
//   model::ModelPtr model = model::CreateModel(config);      // same seed on every rank
//   model::FashionMnist train_set(dir, "train"), test_set(dir, "test");
//   TrainResult result = Train(*model, train_set, &test_set, options, &comm);
//
// One step, on every rank (DistributedDataParallel's semantics, without hooks):
//   1. the global batch is the next `batch_size` indices of the epoch's global order, a
//      permutation of the training set drawn from (seed, epoch) only, identical on every rank;
//   2. rank r takes the slice dist::ShardRange(batch, world, r) of it, decodes and preprocesses
//      it (model::MakeBatch), and augments each sample with a seed derived from (seed, epoch,
//      position in the global order), so augmentation does not depend on the rank either;
//   3. it back-propagates  sum over its samples of loss_i / global_batch  (loss_i: cross-entropy
//      with label smoothing), and the gradients are summed over ranks (dist::AllReduceGradients
//      with ReduceOp::kSum): every rank holds the gradient of the mean loss over the global
//      batch, exactly, even when the shards differ in size;
//   4. every rank takes the same AdamW step at the schedule's learning rate for this step.
// Parameters are broadcast from rank 0 first. A run is therefore reproducible for a fixed world
// size, and runs at different world sizes agree up to the floating-point order of the gradient
// sums (tests/gen/train_mpi_test.cc).
//
// Collective: when comm is non-null, Train and Evaluate must be called by every rank of comm with
// the same model architecture, dataset, options and seed. A null comm means one process.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <limits>
#include <vector>

#include "dist/communicator.h"
#include "dist/grad_sync.h"
#include "launch/train/augment.h"
#include "launch/train/train_optimizer.h"
#include "launch/train/train_schedule.h"
#include "model/data/dataset.h"
#include "model/vision_model.h"

namespace psaq::train {

struct TrainOptions {
  // Passes over the training set. Default 30. Must be >= 1.
  int epochs = 30;
  // Images per optimiser step, over all ranks together (the global batch). Default 256. The
  // gradient is that of the mean loss over the global batch whatever the world size. Must be
  // >= 1 and <= the training-set size.
  int64_t batch_size = 256;
  // Drop the last, incomplete global batch of each epoch (timm's default for training). With
  // false it is used as a smaller batch (its mean loss). Default true.
  bool drop_last = true;
  // Learning-rate curve. Train fills in total_steps; a warm-up given in epochs (warmup_epochs
  // below) overrides lr.warmup_steps. Default: cosine from 1e-3 to 1e-5.
  TrainLrOptions lr;
  // Linear warm-up length in epochs (kWarmupCosine only), in [0, epochs); converted to steps
  // (rounded). Default 1. Set it to 0 and use lr.warmup_steps for a warm-up in steps.
  double warmup_epochs = 1.0;
  // AdamW betas, eps and weight decay (decay only on matrices; launch/train/train_optimizer.h).
  AdamWConfig adamw;
  // Label smoothing of the cross-entropy, in [0, 1). Default 0.1 (DeiT's recipe).
  double label_smoothing = 0.1;
  // Random crop after padding and horizontal flip (launch/train/augment.h). Default pad 2 with black
  // pixels, flip 0.5. pad = 0 and flip_prob = 0 train on the plain images.
  AugmentOptions augment;
  // Seed of the data order and of the augmentation. The model's initial weights are the caller's
  // (seed the torch RNG before creating the model; rank 0's are broadcast). Default 0.
  uint64_t seed = 0;
  // Gradient bucketing for the all-reduce (its `reduce` is forced to kSum). Default 25 MiB.
  dist::GradSyncOptions grad_sync;
  // Evaluate top-1 on the test set every N epochs and after the last one (when a test set is
  // given). 0 = only after the last epoch. Default 1.
  int eval_every_epochs = 1;
  // Images per forward pass in evaluation, per rank. Default 500.
  int64_t eval_batch_size = 500;
  // Log progress on rank 0 every N steps (and at every epoch end). 0 = epoch ends only.
  // Default 50.
  int log_every_steps = 50;
  // Stop after this many optimiser steps in total (the schedule still spans every epoch), for
  // smoke tests and benchmarks. 0 = no limit. Default 0.
  int64_t max_steps = 0;
};

// Throws std::invalid_argument naming the field for values outside the documented ranges.
void ValidateTrainOptions(const TrainOptions& options);

// Top-1 and mean loss over a dataset, counted over all ranks.
struct EvalResult {
  int64_t correct = 0;  // samples whose arg-max logit is the label
  int64_t count = 0;    // samples evaluated
  double loss = 0;      // mean cross-entropy (no smoothing)
  double top1() const { return count > 0 ? 100.0 * static_cast<double>(correct) / count : 0.0; }
};

// Collective when comm is non-null. Rank r evaluates the slice ShardRange(size, world, r) of
// `dataset` in batches of `batch_size`, in eval mode under no-grad (the model's train/eval mode is
// restored); counts and loss sums are all-reduced, so every rank returns the same totals.
// Throws std::runtime_error listing the first images that failed to decode (none for IDX data);
// TORCH_CHECK on batch_size < 1.
EvalResult Evaluate(model::VisionModel& model, const model::ImageDataset& dataset,
                    int64_t batch_size, dist::Communicator* comm);

struct EpochStats {
  int epoch = 0;                 // 1-based
  int64_t steps = 0;             // optimiser steps taken in this epoch
  int64_t images = 0;            // training images used in this epoch (all ranks)
  double train_loss = 0;         // mean smoothed cross-entropy over those images
  double train_top1 = 0;         // percent, on the augmented images, during training
  double lr = 0;                 // learning rate of the epoch's last step
  double seconds = 0;            // wall time of the epoch, evaluation excluded
  double images_per_second = 0;  // images / seconds, all ranks
  bool evaluated = false;        // whether the test set was evaluated after this epoch
  EvalResult test;               // when evaluated
};

struct TrainResult {
  std::vector<EpochStats> epochs;  // in order; fewer than options.epochs when max_steps stopped it
  int64_t steps = 0;               // optimiser steps in total
  double seconds = 0;              // wall time of the whole call, evaluation included
  double comm_seconds = 0;         // of which in gradient and parameter collectives (this rank)
  // The last evaluation (the final model's when a test set was given).
  bool evaluated = false;
  EvalResult final_test;
};

// Collective when comm is non-null (see the top of this file). Trains `model` in place, in train
// mode, in its own dtype and on the CPU (comm's device for the MPI backend), and leaves it in eval
// mode. test_set may be null (no evaluation). Progress goes to LOG(INFO) on rank 0.
// Throws std::invalid_argument for invalid options (before any collective), std::runtime_error
// when a training image fails to decode (naming it) or the loss becomes non-finite (naming the
// epoch and step; the same on every rank, since the loss is all-reduced at that check).
TrainResult Train(model::VisionModel& model, const model::ImageDataset& train_set,
                  const model::ImageDataset* test_set, const TrainOptions& options,
                  dist::Communicator* comm);

// The epoch's global order: a permutation of [0, n) from a Fisher-Yates shuffle driven by
// splitmix64 seeded with DeriveSeed(seed, stream, epoch). Platform- and library-independent.
std::vector<int64_t> EpochOrder(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace psaq::train
