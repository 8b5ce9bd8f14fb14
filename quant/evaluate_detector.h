// COCO box AP and mask AP of a Swin Mask R-CNN (model/detect/mask_rcnn.h) on a COCO-format set
// (model/data/coco_dataset.h), split over the ranks of a job: what `psaq eval` runs for a detector.
//
//   DetectorEvalOptions options;
//   options.batch_size = 4;
//   const DetectorEvalResult r = EvaluateDetector(comm, detector, dataset, options);
//   // r.box.stats[0] is box AP@[.5:.95], r.segm.stats[0] mask AP: the same on every rank and for
//   // any number of ranks.
//
// Per image, as mmdetection's test pipeline without its Resize (the image is taken at its own
// size) and its DetDataPreprocessor: RGB, (pixel - mean) / std with the detector config's
// mean/std (0..255 units), the batch padded with zeros (after normalising) on the bottom and right
// to the largest height and width of the batch rounded up to config.size_divisor(). The
// detections of each image are then clipped to its own width x height (boxes) and cropped to it
// (masks), as mmdet clips to img_shape and pastes at ori_shape.
//
// Work split: as quant/evaluate.h, the first n images cut into a fixed grid of batches of
// batch_size, the batches split over the ranks with dist::ShardRange, so every image is forwarded
// with the same companions whatever the number of ranks.
//
// Detections become COCO results (ToCocoDetections): bbox [x1, y1, x2 - x1, y2 - y1], category id
// = the dataset's categories()[label].id, the score, the mask as RLE (model/data/coco_mask.h); the
// area is left to the evaluator (the box's w * h, as pycocotools' loadRes assigns when results
// carry boxes, for segm too). Both evaluations go through EvaluateCocoSharded
// (quant/detection_eval.h) against the dataset's ground truth (CocoGroundTruthOf).
//
// Malformed images (CocoDataset::Decode fails): kSkip warns, leaves the image out of the
// evaluation (its ground truth too, on every rank) and counts it; kFail throws std::runtime_error
// naming the file on the rank that met it (psaq's mains then abort the job).
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "model/data/coco_dataset.h"
#include "model/data/coco_eval.h"
#include "model/detect/mask_rcnn.h"
#include "quant/evaluate.h"  // BadImagePolicy
#include "quant/quantized_detector.h"

namespace psaq::quant {

// Largest image side EvaluateDetector takes: the detector runs at the image's own size (no
// resize), and its memory grows with the area (mmdetection resizes COCO images to at most 1333 px).
inline constexpr int64_t kMaxDetectorImageSide = 4096;

struct DetectorEvalOptions {
  // Images per forward pass on a rank, and the unit of the work split. Default 1.
  int64_t batch_size = 1;
  // Evaluate only the first max_images images of the dataset (dataset order). Default 0 = all.
  int64_t max_images = 0;
  // Malformed images: fail (default) or skip (see above).
  BadImagePolicy on_bad_image = BadImagePolicy::kFail;
  // Where the forward runs (the batches also take the detector's dtype). Default the CPU.
  c10::Device device = c10::Device(c10::kCPU);
  // Rank 0 logs progress at most this often, in seconds. Default 10; 0 = never.
  double progress_interval_seconds = 10;
  // Gather every rank's detections into DetectorEvalResult::detections on rank 0 (for a results
  // file). Default false.
  bool gather_detections = false;
};

struct DetectorEvalResult {
  data::CocoStats box;         // the 12 numbers of the bbox evaluation
  data::CocoStats segm;        // and of the segm evaluation
  int64_t images = 0;          // images evaluated, all ranks
  int64_t skipped = 0;         // malformed images left out (kSkip), all ranks
  int64_t detections = 0;      // detections made, all ranks
  double seconds = 0;          // wall time on this rank, evaluation and collectives included
  double forward_seconds = 0;  // the slowest rank's time in preprocessing + forward + conversion
  double peak_rss_mb = 0;      // the largest peak resident memory of any rank at the end, MiB
  // With gather_detections, on rank 0: every detection, in dataset order of the images (each
  // image's in the detector's order, best score first). Empty otherwise.
  std::vector<data::CocoDetection> detections_all;

  // Images per second of inference (images / forward_seconds); 0 when nothing ran.
  double images_per_second() const;
};

// The dataset's ground truth for the evaluator, over its images [0, n) (n = 0: all) except those
// whose ids are in `excluded`: every annotation with its area, iscrowd, box and mask (RLE at the
// image's size, CocoDataset::MaskRle), categories = every category of the dataset.
data::CocoGroundTruth CocoGroundTruthOf(const data::CocoDataset& dataset, int64_t n = 0,
                                        const std::vector<int64_t>& excluded = {});

// The batch of decoded images [H_i, W_i, 3] uint8 as the detector takes it: float32
// [B, 3, H, W] normalised with config.mean/std and zero-padded on the bottom/right to H, W = the
// largest sides rounded up to config.size_divisor(). REQUIRES: images non-empty, each uint8
// [h, w, 3] and config.in_chans == 3 (TORCH_CHECK).
at::Tensor PreprocessDetectionBatch(const std::vector<at::Tensor>& images,
                                    const detect::DetectorConfig& config);

// One image's detections as COCO results (see above), clipped/cropped to height x width.
// REQUIRES: every label < categories.size(), masks at least height x width (TORCH_CHECK).
std::vector<data::CocoDetection> ToCocoDetections(
    const detect::Detections& detections, int64_t image_id, int64_t height, int64_t width,
    const std::vector<data::CocoCategory>& categories);

// A COCO results JSON (what pycocotools' COCO.loadRes reads and data::LoadCocoDetections reads
// back to equal detections): [{"image_id", "category_id", "bbox": [x, y, w, h], "score",
// "segmentation": {"size": [h, w], "counts": "<compressed RLE>"}}], doubles printed to round-trip.
std::string CocoResultsJson(const std::vector<data::CocoDetection>& detections);

// Throws std::runtime_error "<dataset json>: <reason>" when the detector cannot be evaluated on
// the dataset: the detector's num_classes differs from the dataset's categories, its in_chans is
// not 3, or an image (of the first n) has a side above kMaxDetectorImageSide ("image id 7 (a.png):
// 5000 x 300 px, above the 4096 px ..."). Pure: the same on every rank.
void CheckDetectorFitsDataset(const detect::DetectorConfig& config,
                              const data::CocoDataset& dataset, int64_t n);

// Collective over `comm` (an all-gather of the skipped image ids, EvaluateCocoSharded twice, an
// all-reduce of counts and times; with gather_detections one more all-gather). Every rank passes
// the same detector weights, dataset and options. Throws c10::Error for batch_size < 1 or
// max_images < 0, CheckDetectorFitsDataset's error on every rank, std::runtime_error naming the
// image with kFail (on its rank), EvaluateCocoSharded's errors (on every rank).
DetectorEvalResult EvaluateDetector(dist::Communicator& comm, detect::MaskRcnn& detector,
                                    const data::CocoDataset& dataset,
                                    const DetectorEvalOptions& options = {});
// The same for a quantized detector, in its current mode (Forward).
DetectorEvalResult EvaluateDetector(dist::Communicator& comm, QuantizedDetector& detector,
                                    const data::CocoDataset& dataset,
                                    const DetectorEvalOptions& options = {});
// The same with the outputs computed by `forward` (batches prepared for `detector`'s config,
// device and dtype; `detector` is switched to eval mode).
using DetectorForwardFn = std::function<detect::DetectorOutputs(const at::Tensor&)>;
DetectorEvalResult EvaluateDetector(dist::Communicator& comm, detect::MaskRcnn& detector,
                                    const DetectorForwardFn& forward,
                                    const data::CocoDataset& dataset,
                                    const DetectorEvalOptions& options = {});

}  // namespace psaq::quant
