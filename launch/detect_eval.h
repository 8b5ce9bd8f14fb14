// `psaq eval` on a detector: a Swin Mask R-CNN weights file (metadata "arch" = "mask_rcnn_swin",
// model/detect/detector_config.h) evaluated on a COCO instances JSON, box AP and mask AP over the
// ranks (quant/evaluate_detector.h). cmd_eval.cc fills the request from its flags and calls
// RunDetectEval; the console text and the JSON report are built here.
//
// Console (rank 0): a summary block (model, dataset, images, detections, inference and total time,
// peak memory), then for "bbox" and "segm" the 12 numbers exactly as pycocotools'
// COCOeval.summarize prints them (FormatCocoSummarize).
//
// "skipped" counts the images left out under --on_bad_image=skip, whether the dataset refused them
// when it was opened (their file's header) or they failed to decode during the evaluation.
//
// --json_out document: {"box": {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10",
// "AR100", "ARs", "ARm", "ARl"}, "segm": {the same}, "images", "skipped", "detections",
// "seconds", "inference_seconds", "images_per_second", "peak_rss_mb", "ranks", "batch_size",
// "max_images", "model", "model_description", "dataset", "psaq_version"}; the AP/AR values are
// fractions in [0, 1], -1 where pycocotools leaves them undefined.
#pragma once

#include <cstdint>
#include <string>

#include "launch/process.h"
#include "model/data/coco_eval.h"
#include "quant/evaluate_detector.h"

namespace psaq::launch {

// True when `path` is a readable safetensors file whose metadata "arch" is a detector's. Reads
// only the header; false for anything else (preset names, classifier files, unreadable paths:
// the classifier path reports those).
bool IsDetectorFile(const std::string& path);

struct DetectEvalRequest {
  std::string model;                  // the detector's .safetensors
  std::string dataset;                // a COCO instances JSON (images under its folder)
  int64_t batch_size = 1;             // images per forward pass on each rank
  int64_t max_images = 0;             // the first N images only (0 = all)
  std::string on_bad_image = "fail";  // fail | skip
  std::string json_out;               // the report ("" = none), written by rank 0
  std::string detections_out;         // COCO results JSON ("" = none), written by rank 0
};

// The report of one evaluation.
struct DetectEvalReport {
  DetectEvalRequest request;
  std::string model_description;    // e.g. "detector fmnist_maskrcnn (mask_rcnn_swin, 10 classes)"
  std::string dataset_description;  // CocoDataset::Describe()
  int ranks = 1;
  quant::DetectorEvalResult result;
};

// The 12 lines of COCOeval.summarize for `stats`, in its format
// (" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.512").
std::string FormatCocoSummarize(const data::CocoStats& stats);
// The console text (see above).
std::string FormatDetectEvalSummary(const DetectEvalReport& report);
// The --json_out document (see above).
std::string DetectEvalReportJson(const DetectEvalReport& report);

// Collective: every rank calls it. Loads the detector (strictly) and the dataset (CocoDataset,
// on_bad_image applied to its entries), evaluates, and on rank 0 prints the summary and writes
// the files (base::AtomicFile). Throws std::runtime_error naming the file and the reason for an
// unusable model or dataset (on every rank, before any collective), and as EvaluateDetector.
int RunDetectEval(ProcessContext& process, const DetectEvalRequest& request);

}  // namespace psaq::launch
