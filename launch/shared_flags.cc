#include "launch/shared_flags.h"

#include "launch/flags.h"
#include "model/data/idx_dataset.h"

DEFINE_string(model, "",
              "The model: a preset name (random weights, e.g. deit_tiny_patch16_224), a weights "
              "file (.safetensors with psaq/timm metadata), or a quantized export written by "
              "'psaq quantize'.");
DEFINE_string(dataset, "",
              "The labelled images: 'fashion_mnist' (the IDX files in --dataset_dir) or the root "
              "of an ImageFolder (<root>/<class>/<image>.{jpg,jpeg,png}, classes sorted by name).");
DEFINE_string(dataset_dir, psaq::model::kDebianFashionMnistDir,
              "Directory of the Fashion-MNIST files (*-images-idx3-ubyte.gz, "
              "*-labels-idx1-ubyte.gz); only with --dataset=fashion_mnist.");
DEFINE_string(split, "test",
              "Fashion-MNIST split: test (10,000 images) or train (60,000); only with "
              "--dataset=fashion_mnist (for an ImageFolder, point --dataset at the split's root). "
              "make-scenes: train or val (items from the train or test images).");
DEFINE_int32(batch_size, 64, "Images per forward pass on each rank (>= 1).");
DEFINE_string(on_bad_image, "fail",
              "What to do with an image that cannot be decoded (corrupt, unreadable, over 1 GiB "
              "or 64 Mpixel): fail (stop the job, naming the file) or skip (warn, leave it out "
              "and count it; --method=real takes a later image of its seeded order instead).");
DEFINE_uint64(seed, 0,
              "The job seed; every random value derives from it, so a run is reproducible for a "
              "fixed number of ranks. train: initial weights, data order, augmentation; "
              "generate/quantize: initial noise, labels, jitter, the choice of real images.");
DEFINE_string(eval_dataset, "",
              "Labelled images for the final top-1: 'fashion_mnist' (its test split in "
              "--dataset_dir) or an ImageFolder root. train: default the test split of "
              "--dataset=fashion_mnist; quantize: default none (no evaluation).");
DEFINE_string(device, "auto",
              "Where the model runs: cpu, cuda (rank r of a node uses GPU r mod #GPUs; needs a "
              "CUDA build of LibTorch), or auto (cuda when a GPU is usable, else cpu).");

namespace {

bool ValidateSplit(const char* flag, const std::string& value) {
  return psaq::launch::CheckOneOf(flag, value, {"test", "train", "val"});
}
bool ValidateOnBadImage(const char* flag, const std::string& value) {
  return psaq::launch::CheckOneOf(flag, value, {"fail", "skip"});
}
bool ValidateDevice(const char* flag, const std::string& value) {
  return psaq::launch::CheckOneOf(flag, value, {"cpu", "cuda", "auto"});
}

}  // namespace

DEFINE_validator(split, &ValidateSplit);
DEFINE_validator(batch_size, &psaq::launch::AtLeast<1>);
DEFINE_validator(on_bad_image, &ValidateOnBadImage);
DEFINE_validator(device, &ValidateDevice);
