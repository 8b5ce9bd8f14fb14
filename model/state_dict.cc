#include "model/state_dict.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <set>
#include <sstream>
#include <stdexcept>

namespace psaq::model {
namespace {

std::string ShapeString(at::IntArrayRef shape) {
  std::ostringstream s;
  s << '[';
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << ']';
  return s.str();
}

// PyTorch's state_dict order: a module's own parameters, then its own buffers, then each child's
// entries depth-first. (named_modules() would need the module to be held by a shared_ptr.)
void Collect(const torch::nn::Module& module, const std::string& prefix,
             std::vector<std::pair<std::string, at::Tensor>>& out) {
  for (const auto& p : module.named_parameters(/*recurse=*/false)) {
    if (p.value().defined()) out.emplace_back(prefix + p.key(), p.value());
  }
  for (const auto& b : module.named_buffers(/*recurse=*/false)) {
    if (b.value().defined()) out.emplace_back(prefix + b.key(), b.value());
  }
  for (const auto& child : module.named_children()) {
    Collect(*child.value(), prefix + child.key() + ".", out);
  }
}

void AppendSection(std::ostringstream& s, const char* title,
                   const std::vector<std::string>& lines) {
  if (lines.empty()) return;
  s << "\n  " << title << " (" << lines.size() << "):";
  for (const auto& line : lines) s << "\n    " << line;
}

}  // namespace

std::vector<std::pair<std::string, at::Tensor>> StateDict(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  Collect(module, "", out);
  return out;
}

void LoadStateDict(torch::nn::Module& module, const std::map<std::string, at::Tensor>& tensors,
                   const std::string& source) {
  const auto state = StateDict(module);
  std::vector<std::string> missing, unexpected, mismatched;
  std::set<std::string> expected;
  for (const auto& [name, dst] : state) {
    expected.insert(name);
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      missing.push_back(name);
    } else if (!it->second.defined() || it->second.is_meta()) {
      mismatched.push_back(name + ": file tensor has no data");
    } else if (it->second.sizes() != dst.sizes()) {
      mismatched.push_back(name + ": file " + ShapeString(it->second.sizes()) + " vs model " +
                           ShapeString(dst.sizes()));
    }
  }
  for (const auto& [name, t] : tensors) {
    if (expected.count(name) == 0) unexpected.push_back(name);
  }
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::ostringstream s;
    const size_t n = missing.size() + unexpected.size() + mismatched.size();
    s << source << ": weights do not match the model (" << n << (n == 1 ? " problem" : " problems")
      << "):";
    AppendSection(s, "missing keys", missing);
    AppendSection(s, "unexpected keys", unexpected);
    AppendSection(s, "shape mismatches", mismatched);
    throw std::runtime_error(s.str());
  }

  // Integer (or bool) data is never converted into floating-point parameters: it is not weights.
  for (const auto& [name, dst] : state) {
    const at::Tensor& src = tensors.at(name);
    if (dst.is_floating_point() && !src.is_floating_point()) {
      throw std::runtime_error(source + ": tensor '" + name + "' holds " +
                               c10::toString(src.scalar_type()) +
                               " data where the model has a floating-point parameter (" +
                               c10::toString(dst.scalar_type()) + ")");
    }
  }

  // Convert everything first, so that a failure (e.g. out of memory) leaves the module untouched.
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> converted;
  converted.reserve(state.size());
  for (const auto& [name, dst] : state) {
    converted.push_back(tensors.at(name).to(dst.device(), dst.scalar_type()));
  }
  // After the conversion, so that an F64 value that overflows float32 counts too: a model with a
  // NaN or Inf weight scores garbage without a word.
  int64_t non_finite_tensors = 0;
  std::string first;
  for (size_t i = 0; i < state.size(); ++i) {
    const at::Tensor& t = converted[i];
    if (!t.is_floating_point() || t.numel() == 0 || at::isfinite(t).all().item<bool>()) continue;
    if (non_finite_tensors++ == 0) {
      const int64_t bad = t.numel() - at::isfinite(t).sum().item<int64_t>();
      first = state[i].first + "' (" + std::to_string(bad) + " of " + std::to_string(t.numel()) +
              " values)";
    }
  }
  if (non_finite_tensors > 0) {
    throw std::runtime_error(source + ": " + std::to_string(non_finite_tensors) +
                             (non_finite_tensors == 1 ? " tensor holds" : " tensors hold") +
                             " NaN or Inf values, first '" + first);
  }
  // Copied into the module's own tensors rather than rebinding them: whoever holds a handle to
  // a parameter (an optimizer, a quantizer) keeps seeing it.
  for (size_t i = 0; i < state.size(); ++i) {
    at::Tensor dst = state[i].second;
    dst.copy_(converted[i]);
  }
}

}  // namespace psaq::model
