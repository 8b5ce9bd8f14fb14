#include "model/detect/mask_rcnn.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <utility>
#include <vector>

#include "model/layer_util.h"

namespace psaq::detect {

using model::TapKind;
using model::TapScope;

MaskRcnn::MaskRcnn(DetectorConfig config)
    : config_(std::move(config)), taps_(std::make_shared<model::TapSet>()) {
  ValidateDetectorConfig(config_);
  const TapScope root(taps_, "");
  input_tap_ = root.Register("input", TapKind::kActivation);
  backbone_ = register_module("backbone", SwinBackbone(config_, root.Child("backbone")));
  std::vector<int> channels;
  for (int s = 0; s < config_.num_stages(); ++s) channels.push_back(config_.stage_channels(s));
  neck_ = register_module(
      "neck", Fpn(channels, config_.fpn_channels, config_.num_outs, root.Child("neck")));
  rpn_head_ = register_module(
      "rpn_head", RpnHead(config_.fpn_channels, config_.rpn_feat_channels, config_.num_anchors(),
                          config_.num_outs, root.Child("rpn_head")));
  auto roi_head = register_module("roi_head", std::make_shared<torch::nn::Module>("RoIHead"));
  bbox_roi_tap_ = root.Register("roi_head.bbox_roi_extractor.out", TapKind::kActivation);
  bbox_head_ = roi_head->register_module(
      "bbox_head", BBoxHead(config_.fpn_channels, config_.bbox_roi_size, config_.fc_out_channels,
                            config_.num_classes, root.Child("roi_head.bbox_head")));
  mask_roi_tap_ = root.Register("roi_head.mask_roi_extractor.out", TapKind::kActivation);
  mask_head_ = roi_head->register_module(
      "mask_head",
      MaskHead(config_.fpn_channels, config_.mask_num_convs, config_.mask_conv_channels,
               config_.num_classes, root.Child("roi_head.mask_head")));
}

}  // namespace psaq::detect
