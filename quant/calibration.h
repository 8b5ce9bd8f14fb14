// Calibration: PSAQ's steps 4-6 (docs/psaq_spec.md §1.1, §3.6), across ranks.
//
// One pass of the calibration batches through the FLOAT model with every activation observer on
// (no grad), one all-reduce that merges all observers of all ranks, then every activation
// quantizer's range is set from its merged observer and all quantizers are switched on at once.
// An observer that needs more passes (RangeObserver::passes(): the percentile search's histogram,
// quant/percentile_observer.h) gets them: the same batches again, one merge after each pass.
// Because the observers' states merge exactly (quant/range_observer.h), the ranges do not
// depend on how the batches were sharded over ranks: rank r may pass only its shard.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

#include "dist/communicator.h"
#include "quant/quantized_detector.h"
#include "quant/quantized_model.h"
#include "quant/tap_quantizers.h"

namespace psaq::quant {

struct CalibrationResult {
  int64_t local_samples = 0;   // images this rank observed (sum of its batches' dim 0)
  int64_t global_samples = 0;  // images observed by all ranks together
  double seconds = 0;          // wall time of the whole call on this rank
};

// Collective when comm is non-null (every rank calls it, in the same order, with the same model
// architecture and config). batches: [B_i, in_chans, H, W] on the model's device; this rank's
// share (may be empty on some ranks, but not on all). The observers are reset first, so earlier
// calibrations do not leak in. Ends in Mode::kQuantized.
// Throws c10::Error when no rank observed anything, when an activation tap saw nothing (naming
// it; identical on every rank, since the merged state is), or when an activation is not finite.
CalibrationResult Calibrate(QuantizedModel& model, const std::vector<at::Tensor>& batches,
                            dist::Communicator* comm);
// The same for a detector (batches at the detector's input size).
CalibrationResult Calibrate(QuantizedDetector& detector, const std::vector<at::Tensor>& batches,
                            dist::Communicator* comm);

// Runs one batch through the network the bank belongs to, in the bank's current mode (the
// result is not used: calibration only needs the taps to see it).
using BatchForward = std::function<void(const at::Tensor&)>;
// The same for any quantizer bank, whose forward is `forward`.
CalibrationResult Calibrate(TapQuantizers& model, const BatchForward& forward,
                            const std::vector<at::Tensor>& batches, dist::Communicator* comm);

// The same as Calibrate for an already calibrated model (PSAQ V2 recalibrates the student on
// the evolved samples each cycle, docs/psaq_spec.md §2.4): reset, observe the float activations
// of the current (latent float) weights, merge, recompute every range. Restores the mode the
// model was in (kFloat is turned into kQuantized, as Calibrate does).
CalibrationResult Recalibrate(QuantizedModel& model, const std::vector<at::Tensor>& batches,
                              dist::Communicator* comm);
CalibrationResult Recalibrate(QuantizedDetector& detector, const std::vector<at::Tensor>& batches,
                              dist::Communicator* comm);
CalibrationResult Recalibrate(TapQuantizers& model, const BatchForward& forward,
                              const std::vector<at::Tensor>& batches, dist::Communicator* comm);

// Collective when comm is non-null. Merges every activation observer's state across ranks:
// one all-reduce per distinct merge op among the observers (one for a uniform config), on the
// CPU for an "mpi" communicator and on the model's device otherwise. No-op for a null comm or
// one rank.
void MergeObservers(TapQuantizers& model, dist::Communicator* comm);

}  // namespace psaq::quant
