#include "model/data/dataset_by_name.h"

#include "model/data/idx_dataset.h"
#include "model/data/image_folder.h"

namespace psaq::model {

std::unique_ptr<ImageDataset> OpenImageDataset(const std::string& name, const std::string& dir,
                                               const std::string& split) {
  if (name == "fashion_mnist") return std::make_unique<FashionMnist>(dir, split);
  if (IsDetectionDataset(name)) {
    throw DatasetError(name + ": a COCO detection set, not a classification dataset");
  }
  return std::make_unique<ImageFolder>(name);
}

bool IsDetectionDataset(const std::string& name) {
  const std::string ext = ".json";
  return name.size() > ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0;
}

std::unique_ptr<data::CocoDataset> OpenDetectionDataset(const std::string& name,
                                                        const std::string& image_dir,
                                                        const data::CocoOptions& options) {
  return std::make_unique<data::CocoDataset>(name, image_dir, options);
}

}  // namespace psaq::model
