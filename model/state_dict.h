// Strict state-dict loading with timm's names.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace torch::nn {
class Module;
}

namespace psaq::model {

// Parameters and persistent buffers of `module` by their dotted names, in registration order.
std::vector<std::pair<std::string, at::Tensor>> StateDict(const torch::nn::Module& module);

// Copies `tensors` into `module`'s parameters/buffers (converting dtype to the module's). Strict:
// when any key is missing, unexpected or shape-mismatched, throws one std::runtime_error whose
// message starts with "<source>: " and lists every such key (with both shapes for mismatches);
// the module is then unchanged.
void LoadStateDict(torch::nn::Module& module, const std::map<std::string, at::Tensor>& tensors,
                   const std::string& source);

}  // namespace psaq::model
