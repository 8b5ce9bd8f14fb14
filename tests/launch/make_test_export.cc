// Test fixture tool for the CLI tests: writes a quantized export of a float weights file,
// calibrated on seeded standard-normal noise (the CLI has no `psaq quantize` yet).
//   make_test_export <weights.safetensors> <out.safetensors> <w_bits> <a_bits>
#include <ATen/ATen.h>

#include <cstdio>
#include <string>
#include <vector>

#include "model/registry.h"
#include "quant/calibration.h"
#include "quant/export.h"
#include "quant/quantized_model.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s <weights.safetensors> <out.safetensors> <w_bits> <a_bits>\n",
                 argv[0]);
    return 2;
  }
  try {
    psaq::quant::QuantConfig config;
    config.weight_bits = std::stoi(argv[3]);
    config.act_bits = std::stoi(argv[4]);
    psaq::quant::QuantizedModel q(psaq::model::LoadModel(argv[1]), config);
    const psaq::model::ModelConfig& c = q.model().config();
    at::manual_seed(20261128);
    const std::vector<at::Tensor> batches = {
        at::randn({32, c.in_chans(), c.img_size(), c.img_size()})};
    psaq::quant::Calibrate(q, batches, nullptr);
    psaq::quant::ExportOptions options;
    options.method = "noise";
    options.num_samples = 32;
    options.tool = "make_test_export";
    psaq::quant::ExportQuantizedModel(q, argv[2], options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_test_export: %s\n", e.what());
    return 1;
  }
  return 0;
}
