#include "launch/inputs.h"

#include "model/idx_dataset.h"
#include "model/image_folder.h"
#include "model/registry.h"

namespace psaq::launch {

std::unique_ptr<model::ImageDataset> OpenDataset(const std::string& dataset, const std::string& dir,
                                                 const std::string& split) {
  if (dataset == "fashion_mnist") return std::make_unique<model::FashionMnist>(dir, split);
  return std::make_unique<model::ImageFolder>(dataset);
}

LoadedModel::LoadedModel(const std::string& name_or_path, c10::Device device) {
  random_weights_ = model::IsPreset(name_or_path);
  model_ = model::LoadModel(name_or_path);
  model_->to(device);
  model_->eval();
  const model::ModelConfig& c = model_->config();
  description_ = std::string(random_weights_ ? "preset " : "float weights ") + c.name + " (" +
                 model::ArchName(c.arch) + ", " + std::to_string(c.num_classes()) + " classes" +
                 (random_weights_ ? ", random weights)" : ")");
}

quant::ForwardFn LoadedModel::forward() {
  model::ModelPtr m = model_;
  return [m](const at::Tensor& x) { return m->forward(x); };
}

}  // namespace psaq::launch
