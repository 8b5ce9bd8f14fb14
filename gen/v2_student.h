// The V2 student (R-V2 Variant A, docs/psaq_spec.md §2.4): which of the quantized model's latent
// float parameters are trained through the straight-through quantizers, how their gradients are
// combined across ranks, and its state for checkpoints.
//
// The student is any quantizer bank (quant/tap_quantizers.h): a QuantizedModel (classifier) or
// a QuantizedDetector; "the model" below is its module().
//
// Every rank holds an identical student: it starts from rank 0's parameters (BroadcastStudent),
// every step applies the same all-reduced gradient with the same Adam state, and every range
// comes from observers merged across ranks. So one copy of its state describes all ranks.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "dist/communicator.h"
#include "dist/grad_sync.h"
#include "quant/tap_quantizers.h"

namespace psaq::gen {

struct StudentParameterOptions {
  // Train the weights of every weight tap (Linear/Conv weights, through the STE). Default true.
  bool weights = true;
  // Train the biases of those layers. Default false.
  bool biases = false;
  // Train LayerNorm weights and biases. Default false.
  bool norms = false;
};

// The parameters selected by `options`, by name in state-dict order, and sets requires_grad on
// exactly those (every other parameter of the student stops requiring grad).
std::vector<std::pair<std::string, at::Tensor>> SelectStudentParameters(
    quant::TapQuantizers& student, const StudentParameterOptions& options);

// Collective. Each tensor's .grad() becomes its average over ranks (dist::AllReduceGradients,
// ReduceOp::kAvg). With the MPI backend and tensors not on the CPU, the gradients travel through
// one CPU buffer. REQUIRES: the same list (names, shapes, order) on every rank.
dist::GradSyncStats SyncStudentGradients(dist::Communicator& comm,
                                         const std::vector<at::Tensor>& params);

// Collective. Every parameter and persistent buffer of the student's model becomes rank 0's.
dist::GradSyncStats BroadcastStudent(dist::Communicator& comm, quant::TapQuantizers& student);

// The student's state: "param.<name>" for every parameter (float32, CPU) and
// "range.<activation tap>" (float64 [2]: min, max) for every activation tap with a range.
std::vector<std::pair<std::string, at::Tensor>> ExportStudentState(
    const quant::TapQuantizers& student);

// Restores ExportStudentState's tensors (parameters copied in place; ranges set, taps absent
// from the state cleared). Throws std::runtime_error naming `source` and the key for a missing
// parameter or a shape mismatch; nothing is changed then.
void ImportStudentState(quant::TapQuantizers& student,
                        const std::map<std::string, at::Tensor>& tensors,
                        const std::string& source);

}  // namespace psaq::gen
