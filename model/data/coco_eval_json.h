// COCO files for the evaluator (model/data/coco_eval.h): the ground truth of an instances JSON
// and the detections of a results JSON, read as pycocotools' COCO() and COCO.loadRes read them,
// minus what evaluation does not use (no images are opened).
//
//   const CocoGroundTruth gt = LoadCocoGroundTruth("instances_val.json");
//   const auto dets = LoadCocoDetections("results.json", gt);
//   const CocoStats s = EvaluateCoco(gt, dets, CocoIouType::kBbox);
//
// Errors: every function throws std::runtime_error with ONE line "<path>: <entry>: <reason>",
// e.g. "gt.json: annotations[3]: 'bbox' must be 4 numbers", for a file that cannot be read, bad
// JSON, a missing or mistyped field, a duplicate image or category id, an annotation on an
// unknown image or category, a negative box size, a segmentation that does not decode (the mask
// codec's reason: model/data/coco_mask.h).
//
// Segmentations (read as pycocotools' annToRLE does): polygons [[x0, y0, x1, y1, ...], ...],
// rasterised at the image's height x width (required then) and merged; or an RLE object
// {"size": [h, w], "counts": [runs] or "<compressed string>"} at its own size.
#pragma once

#include <string>
#include <vector>

#include "model/data/coco_eval.h"

namespace psaq::data {

// An instances JSON: "images" (id; height and width when present), "categories" (id),
// "annotations" (id, image_id, category_id, bbox [x, y, w, h], area, iscrowd 0/1 -- 0 when
// absent, segmentation when present). Annotations keep file order within each image. An
// "ignore" field is not read: COCOeval overwrites it with iscrowd.
CocoGroundTruth LoadCocoGroundTruth(const std::string& path);

// A results JSON: an array of {image_id, category_id, bbox [x, y, w, h], score, segmentation},
// other fields ignored. As loadRes: every image_id must be an image of `gt` (else it throws); a
// category that `gt` does not have is kept and left out by the evaluation (pycocotools filters
// it). When the first entry has a non-empty "bbox", every entry needs one, its area is the box's
// w * h (also for segm evaluation) and "segmentation" is optional; otherwise every entry needs a
// "segmentation", its area is the mask's and its box the mask's (toBbox) unless given. (Box-only
// results cannot be scored as segm: EvaluateCocoImages says which detection has no mask, where
// pycocotools would rasterise the box.) An empty array gives no detections (pycocotools cannot
// load one; COCOeval then scores 0 AP wherever there is ground truth).
std::vector<CocoDetection> LoadCocoDetections(const std::string& path, const CocoGroundTruth& gt);

}  // namespace psaq::data
