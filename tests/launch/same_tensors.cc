// same_tensors A.safetensors B.safetensors: exit 0 when both files hold the same tensors (names,
// dtypes, shapes and every bit), 1 with the first difference on stderr, 2 on a usage or read
// error. Metadata (creation times, paths) is not compared. For the CLI and Slurm tests that
// check a resumed run against an uninterrupted one.
#include <ATen/ATen.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <string>

#include "model/safetensors.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: same_tensors A.safetensors B.safetensors\n");
    return 2;
  }
  try {
    const psaq::model::SafetensorsFile a = psaq::model::ReadSafetensors(argv[1]);
    const psaq::model::SafetensorsFile b = psaq::model::ReadSafetensors(argv[2]);
    if (a.tensors.size() != b.tensors.size()) {
      std::fprintf(stderr, "%zu tensors in %s, %zu in %s\n", a.tensors.size(), argv[1],
                   b.tensors.size(), argv[2]);
      return 1;
    }
    const std::map<std::string, at::Tensor> in_b(b.tensors.begin(), b.tensors.end());
    for (const auto& [name, ta_any] : a.tensors) {
      const auto it = in_b.find(name);
      if (it == in_b.end()) {
        std::fprintf(stderr, "'%s' is missing in %s\n", name.c_str(), argv[2]);
        return 1;
      }
      const at::Tensor ta = ta_any.contiguous();
      const at::Tensor tb = it->second.contiguous();
      if (ta.scalar_type() != tb.scalar_type() || ta.sizes() != tb.sizes() ||
          std::memcmp(ta.data_ptr(), tb.data_ptr(), ta.nbytes()) != 0) {
        std::fprintf(stderr, "'%s' differs between %s and %s\n", name.c_str(), argv[1], argv[2]);
        return 1;
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "same_tensors: %s\n", e.what());
    return 2;
  }
}
