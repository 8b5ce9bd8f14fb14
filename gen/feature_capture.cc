#include "gen/feature_capture.h"

#include <c10/util/Exception.h>

#include <string>
#include <utility>

#include "quant/quantized_model.h"

namespace psaq::gen {
namespace {

void Expect(const std::vector<at::Tensor>& tensors, const std::vector<std::string>& paths,
            const char* point) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    TORCH_CHECK(tensors[i].defined(), "FeatureCapture: the forward did not produce '", paths[i],
                ".", point, "'");
  }
}

}  // namespace

FeatureCapture::FeatureCapture(model::VisionModel& model, const FeatureCaptureOptions& options,
                               quant::QuantizedModel* forward_to)
    : FeatureCapture(model.taps(), model.block_paths(), options, forward_to) {
  TORCH_CHECK(forward_to == nullptr || &forward_to->model() == &model,
              "FeatureCapture: forward_to wraps a different model");
  model_ = &model;
}

FeatureCapture::FeatureCapture(model::TapSet& taps, std::vector<std::string> block_paths,
                               const FeatureCaptureOptions& options, model::TapObserver* forward_to)
    : model_(nullptr),
      taps_(taps),
      paths_(std::move(block_paths)),
      options_(options),
      forward_to_(forward_to) {
  // Tap id -> block index, resolved once: OnTap runs at every tap of every forward and then only
  // indexes these.
  av_slot_.assign(taps_.taps().size(), -1);
  out_slot_.assign(taps_.taps().size(), -1);
  for (size_t b = 0; b < paths_.size(); ++b) {
    if (options_.av_means) {
      const int id = taps_.Find(paths_[b] + ".av_mean");
      TORCH_CHECK(id >= 0, "FeatureCapture: model has no tap '", paths_[b], ".av_mean'");
      av_slot_[static_cast<size_t>(id)] = static_cast<int>(b);
    }
    if (options_.block_outputs) {
      const int id = taps_.Find(paths_[b] + ".out");
      TORCH_CHECK(id >= 0, "FeatureCapture: model has no tap '", paths_[b], ".out'");
      out_slot_[static_cast<size_t>(id)] = static_cast<int>(b);
    }
  }
  Clear();
}

FeatureCapture::~FeatureCapture() {
  // Forward attaches only for its call; this covers a capture attached to the TapSet directly,
  // and never detaches another observer.
  if (taps_.observer() == this) taps_.Detach();
}

uint32_t FeatureCapture::mask() const {
  uint32_t mask = model::TapMask(model::TapKind::kFeature);
  if (forward_to_ != nullptr) {
    mask |= model::TapMask(model::TapKind::kWeight) | model::TapMask(model::TapKind::kActivation);
  }
  return mask;
}

void FeatureCapture::Clear() {
  const size_t blocks = paths_.size();
  av_means_.assign(options_.av_means ? blocks : 0, at::Tensor());
  block_outputs_.assign(options_.block_outputs ? blocks : 0, at::Tensor());
}

void FeatureCapture::CheckCaptured() const {
  Expect(av_means_, paths_, "av_mean");
  Expect(block_outputs_, paths_, "out");
}

at::Tensor FeatureCapture::Forward(const at::Tensor& x) {
  TORCH_CHECK(model_ != nullptr, "FeatureCapture::Forward: constructed from a TapSet; use Run");
  return Run([&] { return model_->forward(x); });
}

at::Tensor FeatureCapture::OnTap(int id, const model::TapInfo& info, const at::Tensor& x) {
  // Weight and activation taps reach here only with forward_to (see mask()).
  if (info.kind != model::TapKind::kFeature) {
    return forward_to_ != nullptr ? forward_to_->OnTap(id, info, x) : x;
  }
  const size_t i = static_cast<size_t>(id);
  if (av_slot_[i] >= 0) av_means_[static_cast<size_t>(av_slot_[i])] = x;
  if (out_slot_[i] >= 0) block_outputs_[static_cast<size_t>(out_slot_[i])] = x;
  return x;
}

}  // namespace psaq::gen
