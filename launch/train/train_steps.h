// What the two data-parallel trainers share (launch/train/train.h for classifiers,
// launch/train/detect_train.h for detectors): the step plan of a run, the trainable parameters,
// and the float64 sum over ranks their loss bookkeeping uses.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <torch/nn/module.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "launch/train/train_schedule.h"

namespace psaq::train {

// How many optimiser steps a run takes and at which learning rates.
struct StepPlan {
  int64_t steps_per_epoch = 0;  // global batches per epoch
  TrainLrOptions lr;            // total_steps = epochs * steps_per_epoch; warm-up filled in
  int64_t planned_steps = 0;    // min(max_steps, total_steps), or total_steps when max_steps = 0
};

// The plan of `epochs` passes over `n` images in global batches of `batch_size` (the last,
// incomplete batch dropped when drop_last, used as a smaller batch otherwise). A warm-up given
// in epochs (> 0) overrides lr.warmup_steps (rounded to steps). Throws std::invalid_argument
// "<what>: batch_size = B is larger than the training set (N images)" and ValidateTrainLr's
// errors.
StepPlan PlanSteps(int64_t n, int64_t batch_size, bool drop_last, int epochs,
                   const TrainLrOptions& lr, double warmup_epochs, int64_t max_steps,
                   const std::string& what);

// The parameters of `model` that require a gradient, in parameters() order. Throws c10::Error when
// there are none.
std::vector<at::Tensor> TrainableParameters(const torch::nn::Module& model);

// Sums `values` (as float64) over the ranks of comm in place; nothing for a null comm or one rank.
// Collective otherwise (one all-reduce on comm's collective device for `model_device`).
void SumOverRanks(std::vector<double>& values, dist::Communicator* comm,
                  const c10::Device& model_device);

// Wall seconds since `start`.
double SecondsSince(std::chrono::steady_clock::time_point start);

}  // namespace psaq::train
