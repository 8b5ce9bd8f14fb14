// A labelled image set named as the CLI names it, opened for reading.
#pragma once

#include <memory>
#include <string>

#include "model/data/dataset.h"

namespace psaq::model {

// "fashion_mnist" (split `split`, "train" or "test", of the IDX files in `dir`) or the root of an
// ImageFolder (<root>/<class>/<image>; `dir` and `split` are then not used). Throws DatasetError
// naming the path for a missing or unusable dataset.
std::unique_ptr<ImageDataset> OpenImageDataset(const std::string& name, const std::string& dir,
                                               const std::string& split);

}  // namespace psaq::model
