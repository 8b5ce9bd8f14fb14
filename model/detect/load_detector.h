// Creating, saving and loading Swin Mask R-CNN detectors, and the conversion of a timm Swin
// classifier's weights into the detector's backbone (mmdetection's swin_converter).
//
// The classifier interface (model::VisionModel, model/registry.h's LoadModel) does not fit a
// detector: its forward returns logits [B, num_classes]. Detectors have their own entry points
// here; LoadModel refuses a detector file with a pointer to LoadDetector.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <optional>
#include <string>

#include "model/detect/detector_config.h"
#include "model/detect/mask_rcnn.h"

namespace psaq::detect {

// A randomly initialised detector. Throws std::invalid_argument for an invalid config.
DetectorPtr CreateDetector(const DetectorConfig& config);

// Loads a .safetensors file with mmdetection's parameter names and "arch"/"config" metadata
// (detector_config.h). When the file has no "arch"/"config" metadata (e.g. an mmdetection
// checkpoint's state_dict converted to safetensors), `fallback` gives the config; without one that
// is an error. mmdetection's derived buffers (keys ending in ".relative_position_index") are
// ignored. Before anything is built, the config is validated (ValidateDetectorConfig, sanity
// bounds included) and must not describe more parameter values than the file holds
// (DetectorParameterCount). Every other key must match: missing, unexpected and shape-mismatched
// keys are listed
// together in one std::runtime_error (model::LoadStateDict), non-finite or integer weights are
// refused. config().name is the file's stem. Throws std::runtime_error naming the file.
DetectorPtr LoadDetector(const std::string& path,
                         const std::optional<DetectorConfig>& fallback = std::nullopt);

// True when `path` is a readable safetensors file whose metadata "arch" is a detector's (a float
// detector or a quantized detector export). Reads only the header; false for anything else.
bool IsDetectorFile(const std::string& path);

// Writes the detector's state dict (mmdetection's names, state-dict order) with its config in
// the metadata, plus `extra` entries (e.g. a training record; they may not replace "arch",
// "config" or "name": std::invalid_argument); LoadDetector reads it back to an equal detector.
void SaveDetector(const MaskRcnn& detector, const std::string& path,
                  const std::map<std::string, std::string>& extra = {});

// PatchMerging weights from timm's merge order to nn.Unfold's (mmdetection's), as mmdet's
// swin_converter (correct_unfold_reduction_order / correct_unfold_norm_order):
//   reduction [2C, 4C]: column p·C + c (timm: p over (h,w) = (0,0),(1,0),(0,1),(1,1)) moves to
//   column c·4 + q (unfold: q = kh·2 + kw over (0,0),(0,1),(1,0),(1,1)), i.e. timm blocks
//   [0, 2, 1, 3] in unfold position order, interleaved channel-major. norm [4C]: the same.
at::Tensor MergeReductionTimmToUnfold(const at::Tensor& weight);  // [O, 4C] -> [O, 4C]
at::Tensor MergeNormTimmToUnfold(const at::Tensor& vector);       // [4C] -> [4C]
// The inverses (unfold order -> timm order).
at::Tensor MergeReductionUnfoldToTimm(const at::Tensor& weight);
at::Tensor MergeNormUnfoldToTimm(const at::Tensor& vector);

// A timm 1.0 SwinTransformer state dict (model/swin.h's names) as the detector backbone's
// entries, as mmdetection's swin_converter followed by its backbone loading:
//   patch_embed.proj.*            -> backbone.patch_embed.projection.*
//   patch_embed.norm.*            -> backbone.patch_embed.norm.*
//   layers.<s>.blocks.<j>.attn.*  -> backbone.stages.<s>.blocks.<j>.attn.w_msa.*
//   layers.<s>.blocks.<j>.mlp.fc1.* / fc2.* -> ...ffn.layers.0.0.* / ...ffn.layers.1.*
//   layers.<s>.blocks.<j>.norm1/norm2.* -> the same under backbone.stages
//   layers.<s>.downsample.* (s >= 1) -> backbone.stages.<s-1>.downsample.*, permuted to unfold
//                                      order (timm 1.0 puts the merge at the start of the next
//                                      stage; the original Swin and mmdet at the end of this one)
//   head.*                        -> dropped (as mmdet)
//   norm.*                        -> dropped (mmdet's loader drops it with strict=False; the
//                                    detector's norm0..norm3 are its own)
// Derived constants (relative_position_index, attn_mask) are dropped. Any other key is an error
// (std::runtime_error naming it).
std::map<std::string, at::Tensor> ConvertTimmSwinToBackbone(
    const std::map<std::string, at::Tensor>& timm_state);

}  // namespace psaq::detect
