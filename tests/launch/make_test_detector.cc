// Test fixture tool for the detector CLI tests and benchmark: writes a randomly initialised Swin
// Mask R-CNN (no trained weights are needed to test evaluation) from a torch seed and a config.
//   make_test_detector <out.safetensors> <seed> '<config JSON>' [key=value ...]
// The config JSON is detector_config.h's "config" metadata (missing keys take the defaults); the
// key=value pairs are added to the file's metadata (e.g. the shipped-detector fields that
// detector_zoo_check reads). The same seed and config give the same weights.
#include <ATen/ATen.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "model/detect/load_detector.h"
#include "model/safetensors.h"
#include "model/state_dict.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s <out.safetensors> <seed> '<config JSON>' [key=value ...]\n",
                 argv[0]);
    return 2;
  }
  try {
    namespace detect = psaq::detect;
    const detect::DetectorConfig config = detect::DetectorConfigFromMetadata(
        {{"arch", detect::kMaskRcnnSwinArch}, {"config", argv[3]}}, "argument 3");
    at::manual_seed(std::stoll(argv[2]));
    const detect::DetectorPtr detector = detect::CreateDetector(config);
    std::map<std::string, std::string> metadata = detect::DetectorConfigToMetadata(config);
    for (int i = 4; i < argc; ++i) {
      const std::string pair = argv[i];
      const size_t eq = pair.find('=');
      if (eq == std::string::npos || eq == 0) {
        std::fprintf(stderr, "argument %d '%s': expected key=value\n", i, argv[i]);
        return 2;
      }
      metadata[pair.substr(0, eq)] = pair.substr(eq + 1);
    }
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (const auto& [name, t] : psaq::model::StateDict(*detector)) {
      tensors.emplace_back(name, t.detach());
    }
    psaq::model::WriteSafetensors(argv[1], tensors, metadata);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_test_detector: %s\n", e.what());
    return 1;
  }
  return 0;
}
