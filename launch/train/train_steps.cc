#include "launch/train/train_steps.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <stdexcept>

#include "dist/collective_util.h"

namespace psaq::train {

StepPlan PlanSteps(int64_t n, int64_t batch_size, bool drop_last, int epochs,
                   const TrainLrOptions& lr, double warmup_epochs, int64_t max_steps,
                   const std::string& what) {
  if (batch_size > n) {
    throw std::invalid_argument(what + ": batch_size = " + std::to_string(batch_size) +
                                " is larger than the training set (" + std::to_string(n) +
                                " images)");
  }
  StepPlan plan;
  plan.steps_per_epoch = drop_last ? n / batch_size : (n + batch_size - 1) / batch_size;
  plan.lr = lr;
  plan.lr.total_steps = plan.steps_per_epoch * epochs;
  if (warmup_epochs > 0) {
    plan.lr.warmup_steps = std::llround(warmup_epochs * static_cast<double>(plan.steps_per_epoch));
  }
  ValidateTrainLr(plan.lr);
  plan.planned_steps =
      max_steps > 0 ? std::min(max_steps, plan.lr.total_steps) : plan.lr.total_steps;
  return plan;
}

std::vector<at::Tensor> TrainableParameters(const torch::nn::Module& model) {
  std::vector<at::Tensor> params;
  for (const at::Tensor& p : model.parameters()) {
    if (p.requires_grad()) params.push_back(p);
  }
  TORCH_CHECK(!params.empty(), "training: the model has no trainable parameters");
  return params;
}

void SumOverRanks(std::vector<double>& values, dist::Communicator* comm,
                  const c10::Device& model_device) {
  if (comm == nullptr || comm->size() == 1) return;
  at::Tensor t = at::tensor(values, at::TensorOptions().dtype(at::kDouble))
                     .to(dist::CollectiveDevice(*comm, model_device));
  comm->AllReduce(t, dist::ReduceOp::kSum);
  t = t.cpu();
  for (size_t i = 0; i < values.size(); ++i) values[i] = t[static_cast<int64_t>(i)].item<double>();
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace psaq::train
