// Collecting a model's block features during its forward pass, through the feature taps
// (model/tap.h): "<block>.av_mean" (A·V averaged over heads, [B', N, d], B' = B or B * nW for
// Swin; PSAQ's patch-similarity input) and optionally "<block>.out" (the block output, ViT
// [B, N, C], Swin [B, H, W, C]; for feature distances), both in block order
// (VisionModel::block_paths()).
//
//   FeatureCapture capture(teacher, {.av_means = true});
//   at::Tensor logits = capture.Forward(x);          // attaches itself for the call
//   PatchSimilarityEntropyLoss(capture.av_means(), B);
//
// With a quantized model: QuantizedModel (quant/quantized_model.h) is itself a TapObserver for
// weight and activation taps, and a TapSet holds one observer. Pass it as `forward_to`: this
// capture then attaches for ALL tap kinds, hands every weight and activation tap to
// QuantizedModel::OnTap (so the model computes exactly what QuantizedModel::Forward computes in
// its current mode) and records the feature taps, which therefore see quantized features in
// kQuantized mode.
//
// Models that are not VisionModels (the detector, model/detect/mask_rcnn.h) are captured through
// their TapSet and block paths, with the forward run by the caller inside Run:
//
//   FeatureCapture capture(detector.taps(), detector.block_paths());
//   detect::DetectorOutputs out = capture.Run([&] { return detector.forward(x); });
//
// The captured tensors are the model's own (part of the autograd graph when grad is on): a loss
// on them back-propagates into the input. Lifetime: refers to the model (and `forward_to`), which
// must outlive it. Not thread-safe (one forward at a time, like the model).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "model/tap.h"
#include "model/vision_model.h"

namespace psaq::quant {
class QuantizedModel;
}

namespace psaq::gen {

struct FeatureCaptureOptions {
  // Record "<block>.av_mean" of every block. Default true (PSAQ's entropy loss needs them).
  bool av_means = true;
  // Record "<block>.out" of every block. Default false; true for the V2 feature discrepancy.
  bool block_outputs = false;
};

class FeatureCapture : public model::TapObserver {
 public:
  // `model` is the float model the forward runs (for a quantized model: quantized->model()).
  // REQUIRES (TORCH_CHECK): every block path has the requested feature taps; when `forward_to`
  // is given, it wraps this same model.
  FeatureCapture(model::VisionModel& model, const FeatureCaptureOptions& options = {},
                 quant::QuantizedModel* forward_to = nullptr);
  // The same for any model with feature taps: `taps` its TapSet, `block_paths` the blocks whose
  // taps are "<path>.av_mean" / "<path>.out" (copied). `forward_to` (optional) receives every
  // weight and activation tap, as above. Forward() is not available (use Run).
  FeatureCapture(model::TapSet& taps, std::vector<std::string> block_paths,
                 const FeatureCaptureOptions& options = {},
                 model::TapObserver* forward_to = nullptr);
  ~FeatureCapture() override;
  FeatureCapture(const FeatureCapture&) = delete;
  FeatureCapture& operator=(const FeatureCapture&) = delete;

  // Clears the captured features, attaches this observer for the call (restoring any previous
  // one afterwards) and runs the model's forward on x [B, C, H, W]. Returns the output.
  // Throws c10::Error when a requested feature was not produced by the forward.
  // REQUIRES (TORCH_CHECK): constructed from a VisionModel.
  at::Tensor Forward(const at::Tensor& x);

  // Clears the captured features, attaches this observer while `forward()` runs (restoring any
  // previous one afterwards) and returns what it returns. Throws c10::Error when a requested
  // feature was not produced.
  template <typename Fn>
  auto Run(Fn&& forward) {
    Clear();
    auto out = [&] {
      model::ScopedTapObserver attach(taps_, this, mask());
      return forward();
    }();
    CheckCaptured();
    return out;
  }

  // After Forward: one tensor per block, in block order.
  const std::vector<at::Tensor>& av_means() const { return av_means_; }
  const std::vector<at::Tensor>& block_outputs() const { return block_outputs_; }
  // Drops the captured tensors (and the graph they hold).
  void Clear();

  // The kinds this observer attaches for: kFeature, plus weights and activations when
  // forwarding to a QuantizedModel.
  uint32_t mask() const;

  at::Tensor OnTap(int id, const model::TapInfo& info, const at::Tensor& x) override;

 private:
  void CheckCaptured() const;

  model::VisionModel* model_;  // null when constructed from a TapSet
  model::TapSet& taps_;
  std::vector<std::string> paths_;
  FeatureCaptureOptions options_;
  model::TapObserver* forward_to_;
  // Indexed by tap id: the block slot of an av_mean / out tap, or -1.
  std::vector<int> av_slot_;
  std::vector<int> out_slot_;
  std::vector<at::Tensor> av_means_;
  std::vector<at::Tensor> block_outputs_;
};

}  // namespace psaq::gen
