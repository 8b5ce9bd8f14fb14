// psaq make-scenes: a deterministic COCO-format detection set from Fashion-MNIST items
// (model/data/scenes.h). Rank 0 does the work; other ranks (under mpirun) only wait.
#include <cstdio>
#include <stdexcept>
#include <string>

#include "launch/flags.h"
#include "launch/process.h"
#include "launch/shared_flags.h"
#include "model/data/scenes.h"

DEFINE_int64(num_images, 1000, "make-scenes: images to make, in [1, 200000].");
DEFINE_string(out_dir, "",
              "make-scenes: output directory: <split>/*.png, instances_<split>.json and "
              "scenes_<split>.manifest.json (with the set's checksum) are written there.");
DEFINE_int32(canvas_size, 224,
             "make-scenes: canvas side in pixels, in [160, 4096] (items are 28-160 px).");
DEFINE_validator(num_images, &psaq::launch::AtLeast64<1>);
DEFINE_validator(canvas_size, &psaq::launch::AtLeast<160>);

namespace psaq::launch {
namespace {

bool IsSet(const char* flag) { return !gflags::GetCommandLineFlagInfoOrDie(flag).is_default; }

data::ScenesOptions OptionsFromFlags() {
  data::ScenesOptions o;
  o.fashion_mnist_dir = FLAGS_dataset_dir;
  o.split = FLAGS_split;
  o.num_images = FLAGS_num_images;
  o.seed = FLAGS_seed;
  o.canvas_size = FLAGS_canvas_size;
  return o;
}

}  // namespace

void CheckMakeScenesFlags() {
  if (FLAGS_out_dir.empty()) throw UsageError("--out_dir is required");
  if (!IsSet("split")) throw UsageError("--split=train|val is required");
  if (FLAGS_split != "train" && FLAGS_split != "val") {
    throw UsageError(
        "--split must be train or val (val items come from Fashion-MNIST's test "
        "images), got '" +
        FLAGS_split + "'");
  }
  try {
    data::ValidateScenesOptions(OptionsFromFlags());
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--") + e.what());  // names the flag: "--num_images 0: ..."
  }
}

int RunMakeScenes(ProcessContext& process) {
  if (!process.is_root()) return 0;
  const data::ScenesSummary s = data::MakeScenes(OptionsFromFlags(), FLAGS_out_dir);
  std::printf(
      "make-scenes %s: %lld images, %lld annotations (area small %lld, medium %lld, "
      "large %lld)\n  %s\n  checksum %s (recorded in %s)\n",
      FLAGS_split.c_str(), static_cast<long long>(s.num_images),
      static_cast<long long>(s.num_annotations), static_cast<long long>(s.small),
      static_cast<long long>(s.medium), static_cast<long long>(s.large), s.json_path.c_str(),
      s.checksum.c_str(), s.manifest_path.c_str());
  return 0;
}

}  // namespace psaq::launch
