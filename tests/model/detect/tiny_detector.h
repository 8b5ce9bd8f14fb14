// A tiny Swin Mask R-CNN config for the detector tests (seconds on two cores).
#pragma once

#include "model/detect/detector_config.h"

namespace psaq::detect::testing {

// Swin with embed 8, depths {2, 2, 2, 2}, heads {1, 1, 2, 2}, window 7 (so every map of a
// 64..224 input is padded somewhere), FPN 16 channels, 3 classes, mmdet's test_cfg.
inline DetectorConfig TinyDetectorConfig() {
  DetectorConfig c;
  c.name = "tiny_mask_rcnn";
  c.embed_dim = 8;
  c.depths = {2, 2, 2, 2};
  c.num_heads = {1, 1, 2, 2};
  c.window_size = 7;
  c.fpn_channels = 16;
  c.rpn_feat_channels = 16;
  c.num_classes = 3;
  c.fc_out_channels = 32;
  c.mask_conv_channels = 16;
  return c;
}

}  // namespace psaq::detect::testing
