// Fuzz target "coco": the input is one COCO instances JSON file (model/data/coco_dataset.h), read
// as `psaq eval --dataset=<file>.json` reads it, with both bad-entry policies (fail and skip) and
// without the image files (check_image_files = false: the JSON is what is fuzzed). For an accepted
// file, every annotation's mask is built (polygons rasterised, RLEs checked) when its image has at
// most kMaxMaskPixels pixels, and checked:
//   - a mask's area is at most its image's pixels and its box lies inside the image;
//   - an RLE survives ToString -> FromString unchanged (the compressed form COCO writes);
//   - the image decode of a missing file is a clean failure (false), never a throw.
// Seeds: tests/fuzz/corpus/coco (a make-scenes set of 2 images, and a hand-written file with
// polygons, both RLE forms and a crowd annotation; written by make_fuzz_corpus).
#include <ATen/ATen.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "model/data/coco_dataset.h"
#include "model/data/coco_mask.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

constexpr char kTarget[] = "coco";
// Masks are built for images of at most this many pixels (the parse itself has no such limit).
constexpr int64_t kMaxMaskPixels = int64_t{1} << 20;

void CheckMasks(const psaq::data::CocoDataset& ds) {
  using namespace psaq;
  for (const data::CocoAnnotation& a : ds.annotations()) {
    const data::CocoImage& image = ds.image(ds.IndexOfImageId(a.image_id));
    if (image.width * image.height > kMaxMaskPixels) continue;
    data::Rle rle;
    if (!fuzz::Parses(kTarget, [&] { rle = ds.MaskRle(a); })) continue;  // e.g. a huge polygon
    data::CheckRle(rle);
    if (data::Area(rle) > image.width * image.height) fuzz::Fail(kTarget, "mask area > image");
    const auto box = data::ToBbox(rle);
    if (box[0] + box[2] > double(image.width) || box[1] + box[3] > double(image.height)) {
      fuzz::Fail(kTarget, "mask box outside the image");
    }
    if (data::FromString(data::ToString(rle), rle.height, rle.width).counts != rle.counts) {
      fuzz::Fail(kTarget, "RLE changed through its compressed string");
    }
  }
  if (ds.size() > 0) {
    data::CocoSample sample;
    std::string error;
    if (ds.Decode(0, &sample, &error)) fuzz::Fail(kTarget, "decoded a missing image file");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace psaq;
  fuzz::SetUpProcess();
  const std::string path = fuzz::WriteScratch("instances_fuzz.json", data, size);
  for (const auto policy : {data::BadEntryPolicy::kFail, data::BadEntryPolicy::kSkip}) {
    data::CocoOptions options;
    options.on_bad_entry = policy;
    options.check_image_files = false;
    fuzz::Parses(kTarget,
                 [&] { CheckMasks(data::CocoDataset(path, fuzz::ScratchDir(), options)); });
  }
  return 0;
}
