#include "model/data/dataset_by_name.h"

#include "model/data/idx_dataset.h"
#include "model/data/image_folder.h"

namespace psaq::model {

std::unique_ptr<ImageDataset> OpenImageDataset(const std::string& name, const std::string& dir,
                                               const std::string& split) {
  if (name == "fashion_mnist") return std::make_unique<FashionMnist>(dir, split);
  return std::make_unique<ImageFolder>(name);
}

}  // namespace psaq::model
