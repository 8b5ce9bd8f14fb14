#include "gen/v2_student.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/nn/modules/normalization.h>

#include <set>
#include <stdexcept>

#include "gen/adam.h"
#include "model/state_dict.h"

namespace psaq::gen {
namespace {

bool NeedsStaging(const dist::Communicator& comm, const std::vector<at::Tensor>& tensors) {
  if (comm.backend() != "mpi") return false;
  for (const at::Tensor& t : tensors) {
    if (!t.device().is_cpu()) return true;
  }
  return false;
}

}  // namespace

std::vector<std::pair<std::string, at::Tensor>> SelectStudentParameters(
    quant::TapQuantizers& student, const StudentParameterOptions& options) {
  std::set<std::string> weights;
  for (int id : student.weight_taps()) weights.insert(student.tap(id).name);
  std::set<std::string> norms;
  for (const auto& item : student.module().named_modules()) {
    if (dynamic_cast<const torch::nn::LayerNormImpl*>(item.value().get()) == nullptr) continue;
    for (const auto& p : item.value()->named_parameters(/*recurse=*/false)) {
      norms.insert(item.key().empty() ? p.key() : item.key() + "." + p.key());
    }
  }
  std::vector<std::pair<std::string, at::Tensor>> selected;
  for (auto& item : student.module().named_parameters()) {
    const std::string& name = item.key();
    bool train = false;
    if (weights.count(name) > 0) {
      train = options.weights;
    } else if (norms.count(name) > 0) {
      train = options.norms;
    } else if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) {
      // Only the bias of a layer whose weight is a quantization point.
      train = options.biases && weights.count(name.substr(0, name.size() - 5) + ".weight") > 0;
    }
    // Set on every parameter, trained or not, so the backward computes no gradient it would
    // then throw away.
    item.value().set_requires_grad(train);
    if (train) selected.emplace_back(name, item.value());
  }
  return selected;
}

dist::GradSyncStats SyncStudentGradients(dist::Communicator& comm,
                                         const std::vector<at::Tensor>& params) {
  if (!NeedsStaging(comm, params)) return dist::AllReduceGradients(comm, params);
  // MPI moves CPU memory only: gather the gradients into one CPU buffer, average, scatter back.
  dist::GradSyncStats stats;
  const double before = comm.seconds_in_collectives();
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> flat;
  for (const at::Tensor& p : params) {
    at::Tensor g = p.grad().defined() ? p.grad() : at::zeros_like(p);
    flat.push_back(g.reshape({-1}).to(at::kCPU, at::kFloat));
  }
  at::Tensor buffer = at::cat(flat).contiguous();
  comm.AllReduce(buffer, dist::ReduceOp::kAvg);
  int64_t offset = 0;
  for (const at::Tensor& p : params) {
    at::Tensor g = buffer.slice(0, offset, offset + p.numel()).view(p.sizes());
    offset += p.numel();
    at::Tensor handle = p;  // shares p's TensorImpl
    handle.mutable_grad() = g.to(p.device(), p.scalar_type());
  }
  stats.buckets = 1;
  stats.bytes = buffer.numel() * static_cast<int64_t>(sizeof(float));
  stats.comm_seconds = comm.seconds_in_collectives() - before;
  stats.seconds = stats.comm_seconds;
  return stats;
}

dist::GradSyncStats BroadcastStudent(dist::Communicator& comm, quant::TapQuantizers& student) {
  std::vector<at::Tensor> tensors;
  for (auto& [name, t] : model::StateDict(student.module())) tensors.push_back(t);
  if (!NeedsStaging(comm, tensors)) return dist::BroadcastParameters(comm, tensors);
  dist::GradSyncStats stats;
  at::NoGradGuard no_grad;
  for (at::Tensor& t : tensors) {
    // One broadcast per tensor, in its own dtype; the state dict's order is the same on every
    // rank, so the broadcasts pair up.
    at::Tensor host = t.detach().cpu().contiguous();
    comm.Broadcast(host, 0);
    t.copy_(host);
    stats.buckets += 1;
    stats.bytes += host.numel() * static_cast<int64_t>(host.element_size());
  }
  return stats;
}

std::vector<std::pair<std::string, at::Tensor>> ExportStudentState(
    const quant::TapQuantizers& student) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : student.module().named_parameters()) {
    out.emplace_back("param." + item.key(), CpuSnapshot(item.value()));
  }
  for (int id : student.activation_taps()) {
    const quant::ActivationQuantizer& q = student.activation_quantizer(id);
    if (!q.has_range()) continue;
    auto [lo, hi] = q.range();
    // float64: the quantizer keeps its range as doubles, and a resume must restore it exactly.
    out.emplace_back("range." + student.tap(id).name,
                     at::tensor(std::vector<double>{lo, hi}, at::kDouble));
  }
  return out;
}

void ImportStudentState(quant::TapQuantizers& student,
                        const std::map<std::string, at::Tensor>& tensors,
                        const std::string& source) {
  std::vector<std::pair<at::Tensor, at::Tensor>> copies;
  for (auto& item : student.module().named_parameters()) {
    const std::string key = "param." + item.key();
    auto it = tensors.find(key);
    if (it == tensors.end()) throw std::runtime_error(source + ": missing tensor '" + key + "'");
    if (it->second.sizes() != item.value().sizes()) {
      throw std::runtime_error(source + ": '" + key + "' has shape " +
                               c10::str(it->second.sizes()) + ", the model " +
                               c10::str(item.value().sizes()));
    }
    copies.emplace_back(item.value(), it->second);
  }
  std::vector<std::pair<int, std::pair<double, double>>> ranges;
  for (int id : student.activation_taps()) {
    auto it = tensors.find("range." + student.tap(id).name);
    if (it == tensors.end()) continue;
    if (it->second.numel() != 2 || it->second.scalar_type() != at::kDouble) {
      throw std::runtime_error(source + ": 'range." + student.tap(id).name +
                               "' must be float64 [2]");
    }
    const double* v = it->second.data_ptr<double>();
    ranges.push_back({id, {v[0], v[1]}});
  }
  // Changes start only after every entry has passed. A tap saved without a range had none: clear
  // every range first rather than keep this run's.
  at::NoGradGuard no_grad;
  for (auto& [param, value] : copies) param.copy_(value);
  for (int id : student.activation_taps()) student.activation_quantizer(id).ClearRange();
  for (const auto& [id, range] : ranges) {
    student.activation_quantizer(id).SetRange(range.first, range.second);
  }
}

}  // namespace psaq::gen
