// A dataset named as the CLI names it, opened for reading: a labelled image set (classification)
// or a COCO detection set (a separate type: its samples carry boxes and masks, not one label).
#pragma once

#include <memory>
#include <string>

#include "model/data/coco_dataset.h"
#include "model/data/dataset.h"

namespace psaq::model {

// "fashion_mnist" (split `split`, "train" or "test", of the IDX files in `dir`) or the root of an
// ImageFolder (<root>/<class>/<image>; `dir` and `split` are then not used). Throws DatasetError
// naming the path for a missing or unusable dataset, and for a detection set (IsDetectionDataset).
std::unique_ptr<ImageDataset> OpenImageDataset(const std::string& name, const std::string& dir,
                                               const std::string& split);

// True when `name` names a COCO annotation file (it ends in ".json").
bool IsDetectionDataset(const std::string& name);

// The COCO set of annotation file `name` with images under `image_dir` ("" = the JSON's
// directory); see data::CocoDataset for the checks and `options`. Throws DatasetError.
std::unique_ptr<data::CocoDataset> OpenDetectionDataset(const std::string& name,
                                                        const std::string& image_dir,
                                                        const data::CocoOptions& options = {});

}  // namespace psaq::model
