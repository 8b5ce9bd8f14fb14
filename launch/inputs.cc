#include "launch/inputs.h"

#include <filesystem>

#include "model/registry.h"
#include "quant/export.h"
#include "quant/inspect.h"
#include "quant/quant_config.h"

namespace psaq::launch {
namespace {

std::string MetaOr(const std::map<std::string, std::string>& meta, const std::string& key,
                   const std::string& fallback) {
  const auto it = meta.find(key);
  return it == meta.end() ? fallback : it->second;
}

}  // namespace

LoadedModel::LoadedModel(const std::string& name_or_path, c10::Device device) {
  random_weights_ = model::IsPreset(name_or_path);
  std::error_code ec;
  const bool is_export = !random_weights_ && std::filesystem::is_regular_file(name_or_path, ec) &&
                         quant::KindOfFile(name_or_path) == quant::InspectedKind::kQuantizedExport;
  std::string what;
  if (is_export) {
    quant::ImportedModel imported = quant::ImportQuantizedModel(name_or_path);
    quantized_ = std::move(imported.model);
    metadata_ = std::move(imported.metadata);
    model_ = quantized_->model_ptr();
    what = "quantized export " + model_->config().name + " (" +
           quant::DescribeQuantConfig(quantized_->config()) + ", " +
           MetaOr(metadata_, "method", "?") + ", " + MetaOr(metadata_, "num_samples", "?") +
           " samples; ";
  } else {
    model_ = model::LoadModel(name_or_path);
    what =
        std::string(random_weights_ ? "preset " : "float weights ") + model_->config().name + " (";
  }
  model_->to(device);
  model_->eval();
  const model::ModelConfig& c = model_->config();
  description_ = what + model::ArchName(c.arch) + ", " + std::to_string(c.num_classes()) +
                 " classes" + (random_weights_ ? ", random weights)" : ")");
}

quant::ForwardFn LoadedModel::forward() {
  if (quantized_ != nullptr) {
    quant::QuantizedModel* q = quantized_.get();
    return [q](const at::Tensor& x) { return q->Forward(x); };
  }
  model::ModelPtr m = model_;
  return [m](const at::Tensor& x) { return m->forward(x); };
}

}  // namespace psaq::launch
