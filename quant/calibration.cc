#include "quant/calibration.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <chrono>
#include <map>

namespace psaq::quant {
namespace {

// The device collectives of `comm` run on: the CPU for MPI, the model's device otherwise (NCCL).
at::Device CollectiveDevice(const TapQuantizers& model, const dist::Communicator& comm) {
  if (comm.backend() == "mpi") return at::kCPU;
  for (const auto& p : model.module().parameters()) return p.device();
  return at::kCPU;
}

CalibrationResult ObserveMergeApply(TapQuantizers& model, const BatchForward& forward,
                                    const std::vector<at::Tensor>& batches,
                                    dist::Communicator* comm) {
  const auto start = std::chrono::steady_clock::now();
  CalibrationResult result;
  const TapQuantizers::Mode previous = model.mode();
  model.ResetObservers();
  // Every pass sees the same batches; the states merge after each (a histogram's range is the
  // previous pass's merged min/max). The count is the config's, so it is the same on every rank.
  int passes = 1;
  for (int id : model.activation_taps()) passes = std::max(passes, model.observer(id).passes());
  for (int pass = 0; pass < passes; ++pass) {
    if (pass > 0) {
      for (int id : model.activation_taps()) model.observer(id).BeginPass(pass);
    }
    model.SetMode(TapQuantizers::Mode::kCalibrate);
    try {
      at::NoGradGuard no_grad;
      for (const at::Tensor& batch : batches) {
        TORCH_CHECK(batch.dim() == 4, "calibration batch must be [B, C, H, W], got ",
                    batch.sizes());
        forward(batch);
        if (pass == 0) result.local_samples += batch.size(0);
      }
    } catch (...) {
      model.SetMode(previous);
      throw;
    }
    model.SetMode(previous);
    MergeObservers(model, comm);
  }

  result.global_samples = result.local_samples;
  if (comm != nullptr && comm->size() > 1) {
    at::Tensor count =
        at::full({1}, result.local_samples, at::kLong).to(CollectiveDevice(model, *comm));
    comm->AllReduce(count, dist::ReduceOp::kSum);
    result.global_samples = count.cpu().item<int64_t>();
  }
  TORCH_CHECK(result.global_samples > 0, "calibration: no rank passed any sample");
  model.ApplyObservedRanges();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace

void MergeObservers(TapQuantizers& model, dist::Communicator* comm) {
  if (comm == nullptr || comm->size() == 1) return;
  // Group the observers by merge op; each group is one concatenated state, one all-reduce.
  // std::map keeps the group order identical on every rank.
  std::map<int, std::vector<int>> groups;
  for (int id : model.activation_taps()) {
    groups[static_cast<int>(model.observer(id).merge_op())].push_back(id);
  }
  const at::Device device = CollectiveDevice(model, *comm);
  for (const auto& [op, ids] : groups) {
    std::vector<at::Tensor> states;
    states.reserve(ids.size());
    for (int id : ids) states.push_back(model.observer(id).state());
    at::Tensor packed = at::cat(states).to(device).contiguous();  // [sum of state sizes]
    comm->AllReduce(packed, static_cast<dist::ReduceOp>(op));
    packed = packed.cpu();
    int64_t offset = 0;
    for (int id : ids) {
      RangeObserver& observer = model.observer(id);
      const int64_t n = observer.state_size();
      observer.set_state(packed.slice(0, offset, offset + n).clone());
      offset += n;
    }
  }
}

CalibrationResult Calibrate(TapQuantizers& model, const BatchForward& forward,
                            const std::vector<at::Tensor>& batches, dist::Communicator* comm) {
  CalibrationResult result = ObserveMergeApply(model, forward, batches, comm);
  model.SetMode(TapQuantizers::Mode::kQuantized);
  return result;
}

CalibrationResult Recalibrate(TapQuantizers& model, const BatchForward& forward,
                              const std::vector<at::Tensor>& batches, dist::Communicator* comm) {
  const TapQuantizers::Mode previous = model.mode();
  CalibrationResult result = ObserveMergeApply(model, forward, batches, comm);
  model.SetMode(previous == TapQuantizers::Mode::kFloat ? TapQuantizers::Mode::kQuantized
                                                        : previous);
  return result;
}

CalibrationResult Calibrate(QuantizedModel& model, const std::vector<at::Tensor>& batches,
                            dist::Communicator* comm) {
  return Calibrate(model, [&](const at::Tensor& x) { model.Forward(x); }, batches, comm);
}

CalibrationResult Recalibrate(QuantizedModel& model, const std::vector<at::Tensor>& batches,
                              dist::Communicator* comm) {
  return Recalibrate(model, [&](const at::Tensor& x) { model.Forward(x); }, batches, comm);
}

CalibrationResult Calibrate(QuantizedDetector& detector, const std::vector<at::Tensor>& batches,
                            dist::Communicator* comm) {
  return Calibrate(detector, [&](const at::Tensor& x) { detector.Forward(x); }, batches, comm);
}

CalibrationResult Recalibrate(QuantizedDetector& detector, const std::vector<at::Tensor>& batches,
                              dist::Communicator* comm) {
  return Recalibrate(detector, [&](const at::Tensor& x) { detector.Forward(x); }, batches, comm);
}

}  // namespace psaq::quant
