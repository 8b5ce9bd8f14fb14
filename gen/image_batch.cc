#include "gen/image_batch.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <stdexcept>

#include "gen/random_streams.h"
#include "model/data/preprocess.h"

namespace psaq::gen {

at::Tensor ImageBatch::Indices() const { return at::arange(first_index, first_index + size()); }

ImageBatch MakeImageBatch(const model::ModelConfig& config, int64_t first_index, int64_t count,
                          const ImageBatchInit& init, const at::Device& device) {
  TORCH_CHECK(count >= 1, "MakeImageBatch: count must be >= 1, got ", count);
  TORCH_CHECK(first_index >= 0, "MakeImageBatch: first_index must be >= 0, got ", first_index);
  const int64_t c = config.in_chans();
  const int64_t s = config.img_size();
  ImageBatch batch;
  batch.first_index = first_index;
  at::Tensor x = SampleNoise(init.seed, first_index, count, c, s, s, init.init_std).to(device);
  if (init.clamp_init) {
    auto [lo, hi] = model::NormalisedPixelRange(config);
    ClampToBox(x, lo, hi);
  }
  // X is the variable being optimised: the loss is differentiated w.r.t. it, and Adam updates
  // this very tensor in place (it holds a handle to it, not a copy).
  batch.images = x.set_requires_grad(true);
  batch.adam = std::make_unique<Adam>(
      std::vector<std::pair<std::string, at::Tensor>>{{"images", batch.images}}, init.adam);
  batch.tv_target =
      BatchTvTarget(init.seed, first_index, x.numel(), init.tv_target_low, init.tv_target_high);
  if (init.with_labels) {
    batch.labels = SampleLabels(init.seed, first_index, count, config.num_classes()).to(device);
  }
  return batch;
}

void ClampToBox(at::Tensor& images, const at::Tensor& lo, const at::Tensor& hi) {
  TORCH_CHECK(images.dim() == 4 && lo.numel() == images.size(1) && hi.numel() == images.size(1),
              "ClampToBox: need images [B, C, H, W] and C bounds, got ", images.sizes(), ", ",
              lo.sizes(), ", ", hi.sizes());
  // A projection after the optimiser step, not part of the loss; in place on a leaf that
  // requires grad, which needs autograd off.
  at::NoGradGuard no_grad;
  const at::TensorOptions opts = images.options().requires_grad(false);
  images.clamp_(lo.to(opts).view({1, -1, 1, 1}), hi.to(opts).view({1, -1, 1, 1}));
}

std::vector<std::pair<std::string, at::Tensor>> ExportImageBatch(const ImageBatch& batch,
                                                                 const std::string& prefix) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  out.emplace_back(prefix + "images", CpuSnapshot(batch.images));
  out.emplace_back(prefix + "info", at::tensor(std::vector<int64_t>{batch.first_index, batch.size(),
                                                                    batch.iteration}));
  for (auto& entry : batch.adam->ExportState(prefix + "adam.")) out.push_back(std::move(entry));
  return out;
}

void ImportImageBatch(ImageBatch& batch, const std::map<std::string, at::Tensor>& tensors,
                      const std::string& prefix, const std::string& source) {
  auto get = [&](const std::string& key) -> const at::Tensor& {
    auto it = tensors.find(key);
    if (it == tensors.end()) throw std::runtime_error(source + ": missing tensor '" + key + "'");
    return it->second;
  };
  const at::Tensor& info = get(prefix + "info");
  if (info.scalar_type() != at::kLong || info.numel() != 3) {
    throw std::runtime_error(source + ": '" + prefix + "info' must be int64 [3]");
  }
  const int64_t* v = info.data_ptr<int64_t>();
  if (v[0] != batch.first_index || v[1] != batch.size() || v[2] < 0) {
    throw std::runtime_error(source + ": batch '" + prefix + "' holds samples " +
                             std::to_string(v[0]) + "+" + std::to_string(v[1]) + ", expected " +
                             std::to_string(batch.first_index) + "+" +
                             std::to_string(batch.size()));
  }
  const at::Tensor& images = get(prefix + "images");
  if (images.sizes() != batch.images.sizes()) {
    throw std::runtime_error(source + ": '" + prefix + "images' has shape " +
                             c10::str(images.sizes()) + ", expected " +
                             c10::str(batch.images.sizes()));
  }
  // Everything above only checks, and ImportState changes nothing when it throws, so a bad
  // checkpoint leaves the batch as it was. The images are copied into the existing tensor
  // because Adam holds a handle to it.
  batch.adam->ImportState(tensors, prefix + "adam.", source);
  {
    at::NoGradGuard no_grad;
    batch.images.copy_(images);
  }
  batch.iteration = v[2];
}

}  // namespace psaq::gen
