// Fuzz target "image": the input is one image file of an ImageFolder dataset
// (model/data/image_folder.h), decoded and preprocessed as `psaq eval --dataset=DIR` does it:
// model::MakeBatch on the folder's only file, for a 3-channel and a 1-channel model (decode with
// stb_image, channel conversion, resize, centre crop, normalisation). A decoded image must be
// [H, W, 1|3] with H, W > 0, and the batch must have the model's input shape.
//
// The folder (<scratch>/images/c/x.png) is scanned once; each input overwrites the file, as a
// user's file changing between runs would. stb_image picks the decoder from the content, so PNG
// and JPEG seeds both go through the same name.
// In -DPSAQ_FUZZ / -DPSAQ_SANITIZE builds this target compiles stb_image itself
// (stb_image_impl.c), instrumented, instead of calling Debian's libstb.so: same source, and the
// fuzzer sees inside the decoder.
// Seeds: tests/fuzz/corpus/image (tiny PNG grey/grey+alpha/RGB/RGBA/palette/16-bit and baseline
// JPEG grey/RGB, written by make_fuzz_corpus).
#include <ATen/ATen.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "model/config.h"
#include "model/data/dataset.h"
#include "model/data/image_folder.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

constexpr char kTarget[] = "image";
constexpr char kImage[] = "images/c/x.png";

psaq::model::ModelConfig ModelWithChannels(int in_chans) {
  psaq::model::ModelConfig c;
  c.arch = psaq::model::Arch::kViT;
  c.vit.img_size = 16;
  c.vit.patch_size = 4;
  c.vit.in_chans = in_chans;
  c.preprocess.mean.assign(in_chans, 0.5);
  c.preprocess.std.assign(in_chans, 0.25);
  c.preprocess.crop_pct = 0.9;
  c.preprocess.interpolation = "bicubic";
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace psaq;
  fuzz::SetUpProcess();
  static const std::unique_ptr<model::ImageFolder> folder = [] {
    const uint8_t placeholder = 0;
    const std::string file = fuzz::WriteScratch(kImage, &placeholder, 1);
    return std::make_unique<model::ImageFolder>(fuzz::ScratchDir() + "/images");
  }();
  static const model::ModelConfig rgb = ModelWithChannels(3);
  static const model::ModelConfig grey = ModelWithChannels(1);
  fuzz::WriteScratch(kImage, data, size);

  model::Sample sample;
  std::string error;
  if (!folder->Decode(0, &sample, &error)) {
    if (error.empty()) fuzz::Fail(kTarget, "Decode failed without a reason");
    return 0;
  }
  const at::Tensor& image = sample.image;
  if (image.dim() != 3 || image.size(0) <= 0 || image.size(1) <= 0 ||
      (image.size(2) != 1 && image.size(2) != 3) || image.scalar_type() != at::kByte) {
    fuzz::Fail(kTarget, "decoded image of shape " + std::string(c10::str(image.sizes())));
  }
  for (const model::ModelConfig* config : {&rgb, &grey}) {
    fuzz::Parses(kTarget, [&] {
      const model::Batch batch = model::MakeBatch(*folder, {0}, *config);
      const int64_t s = config->img_size();
      if (!batch.failures.empty() ||
          batch.images.sizes() != at::IntArrayRef({1, config->in_chans(), s, s})) {
        fuzz::Fail(kTarget, "an image that decoded gives a batch of shape " +
                                std::string(c10::str(batch.images.sizes())));
      }
    });
  }
  return 0;
}
