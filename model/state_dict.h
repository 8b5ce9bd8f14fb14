// Strict state-dict loading with timm's names.
//
// Persistent buffers only: PyTorch marks some buffers non-persistent (kept out of state_dict, e.g.
// Swin's relative_position_index and attn_mask); LibTorch buffers have no such flag. psaq's models
// therefore register ONLY persistent tensors as buffers and keep derived, non-persistent tensors
// out of the registry (plain members, recomputed or moved to the input's device as needed), so
// every registered parameter and buffer belongs to the state dict.
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

// Parameters and buffers of `module` by their dotted names ("layers.0.blocks.1.attn.qkv.weight"),
// in PyTorch's state_dict order: a module's own parameters, then its own buffers, then its
// children's entries depth-first, each in registration order. Undefined tensors (an absent bias)
// are skipped. The tensors are the module's own (not copies).
std::vector<std::pair<std::string, at::Tensor>> StateDict(const torch::nn::Module& module);

// Copies `tensors` into `module`'s parameters/buffers (converting dtype and device to each
// destination's; no autograd history; requires_grad unchanged). Strict: when any key is missing,
// unexpected, shape-mismatched or without data (undefined, or a meta tensor from
// ReadSafetensorsHeader), throws one std::runtime_error listing every problem, then the module is
// unchanged:
//   "<source>: weights do not match the model (3 problems):
//     missing keys (1):
//       norm.weight
//     unexpected keys (1):
//       head.fc.weight
//     shape mismatches (1):
//       head.weight: file [10, 32] vs model [1000, 32]"
// Then, also before the first copy and with one line each:
//   - a file tensor of an integer or bool dtype for a floating-point parameter/buffer is refused
//     ("<source>: tensor 'x' holds Int data where the model has a floating-point parameter
//     (Float)"): integer data is never silently converted into weights;
//   - non-finite values are refused, counted after the conversion to the module's dtype (so an
//     F64 value that overflows float32 counts): "<source>: 2 tensors hold NaN or Inf values,
//     first 'norm.weight' (3 of 32 values)".
// All tensors are converted before the first copy, so a failure while converting (out of memory)
// also leaves the module unchanged.
void LoadStateDict(torch::nn::Module& module, const std::map<std::string, at::Tensor>& tensors,
                   const std::string& source);

}  // namespace psaq::model
