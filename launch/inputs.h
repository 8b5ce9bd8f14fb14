// Opening the model named by --model (a preset, a float weights file, or a quantized export);
// datasets by name: model/data/dataset_by_name.h.
#pragma once

#include <c10/core/Device.h>

#include <map>
#include <memory>
#include <string>

#include "model/config.h"
#include "model/data/dataset.h"
#include "model/vision_model.h"
#include "quant/evaluate.h"
#include "quant/quantized_model.h"

namespace psaq::launch {

// A model ready for inference on one device, whichever form it was stored in.
class LoadedModel {
 public:
  // `name_or_path`: a preset name (random weights: a warning is logged), a float weights file, or
  // a quantized export. The model is moved to `device` and put in eval mode. Throws
  // std::runtime_error naming the file and the reason.
  LoadedModel(const std::string& name_or_path, c10::Device device);

  // The forward pass, [B, C, S, S] -> logits [B, K], on the device: the float model's, or the
  // quantized model's (fake-quantized weights and activations).
  quant::ForwardFn forward();
  const model::ModelConfig& config() const { return model_->config(); }
  // One line for logs: "float weights vit_fmnist.weights (vit, 10 classes)" or "quantized export
  // m (W4A8, psaq_v1, 1024 samples; vit, 10 classes)".
  const std::string& description() const { return description_; }
  // True when the weights are a preset's random initialisation.
  bool random_weights() const { return random_weights_; }
  // The quantized model of an export (its model() is the float model it quantizes), else null.
  quant::QuantizedModel* quantized() { return quantized_.get(); }
  // An export's metadata (bits, method, samples, ...); empty for float models.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  model::ModelPtr model_;
  std::unique_ptr<quant::QuantizedModel> quantized_;
  std::map<std::string, std::string> metadata_;
  std::string description_;
  bool random_weights_ = false;
};

}  // namespace psaq::launch
