// The Swin Mask R-CNN's configuration: mmdetection's mask_rcnn_swin_fpn config (backbone, neck,
// rpn_head, roi_head and test_cfg of configs/swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py on top of
// configs/_base_/models/mask-rcnn_r50_fpn.py) as one plain struct, and its round trip through a
// weights file's metadata.
//
// Metadata convention (as the classifiers', model/config.h):
//   "arch"    "mask_rcnn_swin"
//   "config"  JSON object with the fields below by their C++ names (e.g. {"embed_dim": 32,
//             "depths": [2, 2], ...}). Missing keys take the defaults below (Swin-T Mask R-CNN on
//             COCO); an unknown key, a wrong type or a value ValidateDetectorConfig rejects is an
//             error naming the source and the key.
//   "name"    optional label.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace psaq::detect {

// The "arch" metadata value of a detector weights file.
inline constexpr const char* kMaskRcnnSwinArch = "mask_rcnn_swin";

struct DetectorConfig {
  std::string name;  // a label (the weights file's stem when loaded)

  // Backbone: mmdet SwinTransformer (out_indices = every stage, patch_norm, no abs pos embed).
  int in_chans = 3;
  int patch_size = 4;                      // = strides[0]; later stages merge 2x2
  int embed_dim = 96;                      // C of stage 0; doubles at every later stage
  std::vector<int> depths = {2, 2, 6, 2};  // blocks per stage
  std::vector<int> num_heads = {3, 6, 12, 24};
  int window_size = 7;  // never clipped (mmdet pads the map to a multiple of it instead)
  int mlp_ratio = 4;    // FFN hidden = mlp_ratio * C (an int in mmdet)
  bool qkv_bias = true;
  double norm_eps = 1e-5;  // every LayerNorm (nn.LayerNorm default, as mmdet's LN)

  // Neck: mmdet FPN, add_extra_convs=False (extra levels by max_pool2d(1, stride 2)).
  int fpn_channels = 256;  // out_channels
  int num_outs = 5;        // >= number of stages

  // RPN head and its anchors (AnchorGenerator; strides per FPN level, num_outs of them).
  int rpn_feat_channels = 256;
  std::vector<double> anchor_scales = {8};
  std::vector<double> anchor_ratios = {0.5, 1.0, 2.0};
  std::vector<int> anchor_strides = {4, 8, 16, 32, 64};
  std::vector<double> rpn_target_stds = {1.0, 1.0, 1.0, 1.0};  // DeltaXYWHBBoxCoder, means 0

  // RoI heads.
  int num_classes = 80;
  int fc_out_channels = 1024;  // Shared2FCBBoxHead
  std::vector<double> rcnn_target_stds = {0.1, 0.1, 0.2, 0.2};
  int mask_num_convs = 4;  // FCNMaskHead
  int mask_conv_channels = 256;
  // SingleRoIExtractor: RoIAlign (aligned=True) on the first len(roi_strides) FPN levels.
  int bbox_roi_size = 7;
  int mask_roi_size = 14;
  // mmdet's configs use 0 (adaptive: ceil(roi size / output size) samples per bin); the issue
  // text said 2. mmdet's value is the default.
  int sampling_ratio = 0;
  std::vector<int> roi_strides = {4, 8, 16, 32};
  double finest_scale = 56;

  // test_cfg.
  int rpn_nms_pre = 1000;    // per level, by score, before decoding
  double rpn_nms_iou = 0.7;  // batched NMS over all levels (level ids as classes)
  int rpn_max_per_img = 1000;
  double rpn_min_bbox_size = 0;  // proposals need width and height > this
  double score_thr = 0.05;       // rcnn
  double rcnn_nms_iou = 0.5;     // per class
  int max_per_img = 100;
  double mask_thr = 0.5;  // mask_thr_binary

  // DetDataPreprocessor's mean/std in 0..255 pixel units (RGB), recorded for the data side; the
  // detector itself takes normalised images.
  std::vector<double> mean = {123.675, 116.28, 103.53};
  std::vector<double> std = {58.395, 57.12, 57.375};

  int num_stages() const { return static_cast<int>(depths.size()); }
  // Channels of stage s: embed_dim * 2^s.
  int stage_channels(int s) const { return embed_dim << s; }
  // Anchors per position: scales x ratios.
  int num_anchors() const { return static_cast<int>(anchor_scales.size() * anchor_ratios.size()); }
  // Input sides must be multiples of this: patch_size * 2^(stages-1), and of the coarsest FPN
  // stride for the pooled levels (32 for Swin-T).
  int size_divisor() const;
};

// Throws std::invalid_argument naming the field and the value when a size, count, channel number
// or threshold is out of range: positive sizes, depths/num_heads of equal non-zero length (at most
// 8 stages), stage channels divisible by their heads, num_outs >= stages, anchor_strides holding
// num_outs values, roi_strides one per backbone stage, 4 target stds > 0, IoU thresholds in
// (0, 1], score_thr and mask_thr in [0, 1), sampling_ratio >= 0, in_chans == mean/std sizes;
// and sanity bounds (model/file_limits.h's spirit): at most kMaxDetectorParameters parameters in
// all (DetectorParameterCount), every channel count <= 65536, window_size <= 64, patch_size <= 64,
// each depth <= 64, mask_num_convs <= 16, RoI sizes <= 64, num_classes <= 100000.
void ValidateDetectorConfig(const DetectorConfig& config);

// The most parameters a detector config may describe (2^33, as model::kMaxModelElements).
inline constexpr double kMaxDetectorParameters = 8589934592.0;

// The number of parameter elements the detector built from `config` holds (exactly its state
// dict's), computed from the config without building anything. REQUIRES: the list fields have
// consistent lengths (depths/num_heads). Returned as a double so huge configs do not overflow.
double DetectorParameterCount(const DetectorConfig& config);

// The config from a weights file's metadata (see above). Throws std::runtime_error
// "<source>: <reason>" for a missing or different "arch", a missing or malformed "config", an
// unknown key, a wrong type, or an invalid config.
DetectorConfig DetectorConfigFromMetadata(const std::map<std::string, std::string>& metadata,
                                          const std::string& source);
// "arch", "config" (every field) and "name" (when non-empty), read back to an equal config.
std::map<std::string, std::string> DetectorConfigToMetadata(const DetectorConfig& config);

}  // namespace psaq::detect
