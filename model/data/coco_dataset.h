// A COCO-format detection dataset: an instances_*.json annotation file and a folder of images,
// as pycocotools' COCO and mmdetection's CocoDataset read them.
//
// The JSON holds
//   "images":      [{"id": int, "file_name": str, "width": int, "height": int, ...}]
//   "annotations": [{"id": int, "image_id": int, "category_id": int,
//                    "bbox": [x, y, w, h] (pixels, top-left corner),
//                    "area": number (what COCO's area ranges use), "iscrowd": 0/1 (optional, 0),
//                    "segmentation": polygons [[x0, y0, x1, y1, ...], ...],
//                                    or {"counts": [run, ...], "size": [h, w]} (uncompressed
//                                    RLE), or {"counts": "<string>", "size": [h, w]}
//                                    (compressed RLE, model/data/coco_mask.h)}, ...]
//   "categories":  [{"id": int, "name": str, ...}]
// Other members are ignored. Category labels are contiguous: label = position of the category
// id among the sorted ids (mmdetection's CocoDataset.cat2label). Images keep the file's order;
// each image's annotations keep the file's order (pycocotools' getAnnIds order).
// Image files: <image_dir>/<file_name>, image_dir defaulting to the JSON file's directory.
//
// Checks at open (each failure is one line "<json path>: <entry>: <reason>", the entry being
// "image id 5", "annotation id 17", "category id 3", or "annotations[12]" when the id itself is
// unusable): malformed JSON (with nlohmann's line/column), a missing or mistyped member, a
// duplicate id, an annotation naming an unknown image or category, a bbox with non-positive width
// or height or outside its image (by more than kCocoBoxSlack pixels), a polygon with fewer than 6
// or an odd number of coordinates, an RLE whose size is not its image's [height, width] or whose
// runs do not sum to height*width, an image file that is missing, not a regular file or whose
// header's size is not the JSON's width x height (only the header is read at open).
// With BadEntryPolicy::kFail the first one throws model::DatasetError. With kSkip a bad image
// (and all of its annotations) or a bad annotation is left out and counted (skipped_images(),
// skipped_annotations(), skip_reasons()); errors in the file as a whole (JSON syntax, a missing
// top-level array, a bad category) still throw.
//
// Limits (a crafted file cannot exhaust memory): the file is at most kMaxCocoJsonBytes, refused
// before it is read; its nesting at most model::kMaxJsonDepth (model/file_limits.h), checked
// before parsing; polygons as coco_mask.h's FromPolygon bounds them; images as
// model/data/image_file.h bounds them.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/data/coco_mask.h"
#include "model/data/dataset.h"  // model::DatasetError, thrown for unusable files and entries

namespace psaq::data {

// Largest annotation file read: 1 GiB (COCO 2017's instances_train2017.json is 448 MB; the parsed
// JSON takes roughly 10x the file's size while the dataset is opened).
inline constexpr int64_t kMaxCocoJsonBytes = int64_t{1} << 30;
// Most bytes the masks of one image may take (Masks(): annotations x height x width bools): 2 GiB,
// e.g. 2,000 masks of 1024x1024.
inline constexpr int64_t kMaxMaskBytes = int64_t{1} << 31;
// How far (pixels) a bbox may pass its image's border before it is refused: annotation tools write
// rounded floats (COCO's own boxes pass the border by up to a few hundredths).
inline constexpr double kCocoBoxSlack = 0.5;

// What to do with a bad image or annotation entry (as --on_bad_image).
enum class BadEntryPolicy {
  kFail,  // throw DatasetError naming the file and the entry (default)
  kSkip,  // leave it out and count it
};

struct CocoOptions {
  // Bad entries: fail (default) or skip (see above).
  BadEntryPolicy on_bad_entry = BadEntryPolicy::kFail;
  // Check at open that every image file exists and that its header declares the JSON's size
  // (reads a few bytes per image). Default true; false defers both to Decode.
  bool check_image_files = true;
};

struct CocoImage {
  int64_t id = 0;
  std::string file_name;  // relative to the image directory
  int64_t width = 0;
  int64_t height = 0;
};

struct CocoCategory {
  int64_t id = 0;
  std::string name;
};

struct CocoAnnotation {
  int64_t id = 0;
  int64_t image_id = 0;
  int64_t category_id = 0;
  int64_t label = 0;             // contiguous label of category_id
  std::array<double, 4> bbox{};  // x, y, w, h as in the file
  double area = 0;               // as in the file
  bool iscrowd = false;
  // Exactly one of the two is set: polygons (each an even number >= 6 of coordinates), or an RLE
  // (from either RLE form; its runs sum to height*width).
  std::vector<std::vector<double>> polygons;
  Rle rle;
  bool is_rle = false;
};

// One image with its annotations.
struct CocoSample {
  at::Tensor image;    // uint8 [H, W, 3] (grey files replicated), CPU
  at::Tensor boxes;    // float32 [N, 4] x1, y1, x2, y2 (x2 = x + w), in pixels
  at::Tensor labels;   // int64 [N] contiguous labels
  at::Tensor iscrowd;  // bool [N]
  int64_t image_id = 0;
  std::vector<int64_t> annotation_ids;  // [N]
};

class CocoDataset {
 public:
  // Reads and checks `annotation_file` (see above); image files are <image_dir>/<file_name>
  // ("" = the directory of annotation_file).
  // Throws model::DatasetError.
  CocoDataset(const std::string& annotation_file, const std::string& image_dir,
              const CocoOptions& options = {});

  // Images kept (bad ones skipped).
  int64_t size() const { return static_cast<int64_t>(images_.size()); }
  const CocoImage& image(int64_t index) const;  // REQUIRES: 0 <= index < size()
  // Categories sorted by id; label = index.
  const std::vector<CocoCategory>& categories() const { return categories_; }
  int64_t num_classes() const { return static_cast<int64_t>(categories_.size()); }
  // Every annotation kept, in file order (for the evaluator).
  const std::vector<CocoAnnotation>& annotations() const { return annotations_; }
  // Positions in annotations() of image `index`'s annotations. REQUIRES: 0 <= index < size()
  const std::vector<int64_t>& annotations_of(int64_t index) const;
  // Position of the image with COCO id `image_id`, or -1.
  int64_t IndexOfImageId(int64_t image_id) const;

  // Decodes image `index` and collects its annotations. Returns false, nothing thrown, with
  // *error = "<path>: <reason>" when the image file cannot be read or decoded
  // (model/data/image_file.h) or decodes to a size other than the JSON's. Thread-safe.
  bool Decode(int64_t index, CocoSample* out, std::string* error) const;
  // The masks of image `index`'s annotations: bool [N, H, W] (H, W the JSON's height, width),
  // rasterised on each call (polygons as pycocotools' annToRLE). Throws c10::Error naming the
  // file and the image when N x H x W exceeds kMaxMaskBytes, and FromPolygon's errors (a polygon
  // past kMaxPolygonBoundaryPoints).
  at::Tensor Masks(int64_t index) const;
  // One annotation's mask as an Rle of its image's size (annToRLE).
  Rle MaskRle(const CocoAnnotation& annotation) const;

  int64_t skipped_images() const { return skipped_images_; }
  int64_t skipped_annotations() const { return skipped_annotations_; }
  // One line per skipped entry, as the error kFail would have thrown.
  const std::vector<std::string>& skip_reasons() const { return skip_reasons_; }

  const std::string& annotation_file() const { return annotation_file_; }
  const std::string& image_dir() const { return image_dir_; }
  std::string ImagePath(int64_t index) const;
  // e.g. "COCO instances_val.json: 500 images, 3,021 annotations, 10 categories".
  std::string Describe() const;

 private:
  std::string annotation_file_;
  std::string image_dir_;
  std::vector<CocoImage> images_;
  std::vector<CocoCategory> categories_;
  std::vector<CocoAnnotation> annotations_;
  std::vector<std::vector<int64_t>> per_image_;  // [size()] positions in annotations_
  std::map<int64_t, int64_t> image_index_;       // COCO image id -> index
  int64_t skipped_images_ = 0;
  int64_t skipped_annotations_ = 0;
  std::vector<std::string> skip_reasons_;
};

}  // namespace psaq::data
