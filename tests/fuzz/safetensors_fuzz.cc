// Fuzz target "safetensors": the input is a whole .safetensors file, read the ways psaq reads a
// float weights file:
//   1. model::ReadSafetensorsHeader and model::ReadSafetensors (model/safetensors.h);
//   2. when the full read succeeds, the header-only read must have succeeded with the same names,
//      dtypes, shapes and metadata (the two share one validator; a difference is a finding);
//   3. model::LoadModel (the config from the metadata, the model built, the weights loaded
//      strictly: `psaq eval --model=FILE`) and quant::InspectFile (`psaq inspect --file=FILE
//      --tensors`).
// Seeds: tests/fuzz/corpus/safetensors (tiny ViT and Swin weights written by make_fuzz_corpus).
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "model/registry.h"
#include "model/safetensors.h"
#include "quant/inspect.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

constexpr char kTarget[] = "safetensors";

void CheckHeaderMatches(const psaq::model::SafetensorsFile& full,
                        const psaq::model::SafetensorsFile& header) {
  using psaq::fuzz::Fail;
  if (full.tensors.size() != header.tensors.size()) {
    Fail(kTarget, "header-only read lists " + std::to_string(header.tensors.size()) +
                      " tensors, the full read " + std::to_string(full.tensors.size()));
  }
  for (size_t i = 0; i < full.tensors.size(); ++i) {
    const auto& [name, t] = full.tensors[i];
    const auto& [hname, ht] = header.tensors[i];
    if (name != hname || t.scalar_type() != ht.scalar_type() || t.sizes() != ht.sizes()) {
      Fail(kTarget, "tensor " + std::to_string(i) + " differs between the header-only read ('" +
                        hname + "') and the full read ('" + name + "')");
    }
  }
  if (full.metadata != header.metadata) {
    Fail(kTarget, "metadata differs between the header-only and the full read");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace psaq;
  fuzz::SetUpProcess();
  const std::string path = fuzz::WriteScratch("input.safetensors", data, size);

  model::SafetensorsFile header;
  const bool header_ok =
      fuzz::Parses(kTarget, [&] { header = model::ReadSafetensorsHeader(path); });
  model::SafetensorsFile full;
  const bool full_ok = fuzz::Parses(kTarget, [&] { full = model::ReadSafetensors(path); });
  if (full_ok) {
    if (!header_ok) fuzz::Fail(kTarget, "the full read accepts what the header-only read refuses");
    CheckHeaderMatches(full, header);
  }
  if (!header_ok) return 0;  // nothing below reads a file the header reader refuses

  fuzz::Parses(kTarget, [&] { (void)model::LoadModel(path); });
  fuzz::Parses(kTarget, [&] {
    quant::InspectOptions options;
    options.list_tensors = true;
    (void)quant::InspectFile(path, options);
  });
  return 0;
}
