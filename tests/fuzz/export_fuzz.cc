// Fuzz target "export": a quantized export and its manifest (quant/export.h), read the ways psaq
// reads them:
//   1. quant::ImportQuantizedModel (`psaq eval --model=EXPORT`); when it succeeds, one forward
//      pass of a zero image through the imported model when the model is small (an accepted file
//      must give a usable model);
//   2. quant::KindOfFile and quant::InspectFile (`psaq inspect --file=EXPORT`), which also reads
//      the manifest.
// Input layout (both files in one input, so the fuzzer mutates them together):
//   <export .safetensors bytes> [kManifestMarker <manifest JSON bytes>]
// split at the LAST marker; without one, the export has no manifest beside it.
// Seeds: tests/fuzz/corpus/export (tiny ViT and Swin exports written by make_fuzz_corpus).
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include "quant/export.h"
#include "quant/inspect.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

constexpr char kTarget[] = "export";
constexpr std::string_view kManifestMarker = "\n#psaq-fuzz-manifest\n";
// Forward passes only for models up to this many input pixels and parameters: a larger model
// that the importer accepts is not a finding, and running it would only slow the fuzzer.
constexpr int64_t kMaxForwardPixels = 64 * 64 * 3;
constexpr int64_t kMaxForwardParams = 1 << 20;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace psaq;
  fuzz::SetUpProcess();
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t marker = input.rfind(kManifestMarker);
  const size_t model_size = marker == std::string_view::npos ? size : marker;
  const std::string path = fuzz::WriteScratch("export.safetensors", data, model_size);
  const std::string manifest = quant::ManifestPath(path);
  if (marker == std::string_view::npos) {
    std::remove(manifest.c_str());
  } else {
    const size_t begin = marker + kManifestMarker.size();
    fuzz::WriteScratch("export.manifest.json", data + begin, size - begin);
  }

  quant::ImportedModel imported;
  if (fuzz::Parses(kTarget, [&] { imported = quant::ImportQuantizedModel(path); })) {
    if (imported.model == nullptr) fuzz::Fail(kTarget, "import returned no model");
    const model::ModelConfig& c = imported.model->model().config();
    int64_t params = 0;
    for (const at::Tensor& p : imported.model->model().parameters()) params += p.numel();
    const int64_t pixels = int64_t{c.img_size()} * c.img_size() * c.in_chans();
    if (pixels <= kMaxForwardPixels && params <= kMaxForwardParams) {
      at::NoGradGuard no_grad;
      at::Tensor y;
      try {
        y = imported.model->Forward(at::zeros({1, c.in_chans(), c.img_size(), c.img_size()}));
      } catch (const std::exception& e) {
        fuzz::Fail(kTarget, std::string("the import accepted the file, a forward pass throws: ") +
                                e.what());
      }
      if (y.dim() != 2 || y.size(0) != 1 || (c.num_classes() > 0 && y.size(1) != c.num_classes())) {
        fuzz::Fail(kTarget, "the imported model's output has shape " +
                                std::string(c10::str(y.sizes())) + " for " +
                                std::to_string(c.num_classes()) + " classes");
      }
    }
  }
  fuzz::Parses(kTarget, [&] { (void)quant::KindOfFile(path); });
  fuzz::Parses(kTarget, [&] { (void)quant::InspectFile(path); });
  return 0;
}
