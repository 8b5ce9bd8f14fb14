#include "quant/metrics.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <limits>
#include <utility>

namespace psaq::quant {
namespace {

// Records every activation tap's value (after `inner`, when given) for one forward.
class ActivationRecorder : public model::TapObserver {
 public:
  ActivationRecorder(QuantizedModel* inner, size_t num_taps) : inner_(inner), values_(num_taps) {}
  at::Tensor OnTap(int id, const model::TapInfo& info, const at::Tensor& x) override {
    at::Tensor y = inner_ != nullptr ? inner_->OnTap(id, info, x) : x;
    if (info.kind == model::TapKind::kActivation) values_[static_cast<size_t>(id)] = y.detach();
    return y;
  }
  std::vector<at::Tensor>& values() { return values_; }

 private:
  QuantizedModel* inner_;
  std::vector<at::Tensor> values_;
};

}  // namespace

double Sqnr(const at::Tensor& reference, const at::Tensor& test) {
  TORCH_CHECK(reference.numel() == test.numel(), "Sqnr: ", reference.sizes(), " vs ", test.sizes());
  // Sums in float64: over a whole activation tensor, float32 sums would blur a small noise
  // energy at high SQNR.
  const at::Tensor ref = reference.detach().to(at::kDouble).reshape({-1});
  const at::Tensor tst = test.detach().to(at::kDouble).reshape({-1}).to(ref.device());
  const double signal = ref.square().sum().item<double>();
  const double noise = (tst - ref).square().sum().item<double>();
  if (noise == 0) return std::numeric_limits<double>::infinity();
  if (signal == 0) return -std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal / noise);
}

double CosineSimilarity(const at::Tensor& a, const at::Tensor& b) {
  TORCH_CHECK(a.numel() == b.numel(), "CosineSimilarity: ", a.sizes(), " vs ", b.sizes());
  const at::Tensor x = a.detach().to(at::kDouble).reshape({-1});
  const at::Tensor y = b.detach().to(at::kDouble).reshape({-1}).to(x.device());
  const double nx = x.norm().item<double>();
  const double ny = y.norm().item<double>();
  if (nx == 0 && ny == 0) return 1.0;
  if (nx == 0 || ny == 0) return 0.0;
  return x.dot(y).item<double>() / (nx * ny);
}

std::vector<TapError> PerLayerError(QuantizedModel& model, const at::Tensor& batch) {
  at::NoGradGuard no_grad;
  const QuantizedModel::Mode previous = model.mode();
  model.SetMode(QuantizedModel::Mode::kQuantized);  // checks calibration before any work
  model::TapSet& taps = model.model().taps();
  const size_t n = taps.taps().size();

  // Two forwards of the same batch: float values, then fake-quantized ones. The quantized run
  // feeds each layer quantized inputs, so a tap's error includes everything upstream of it.
  ActivationRecorder float_run(nullptr, n);
  at::Tensor float_out;
  {
    model::ScopedTapObserver attach(taps, &float_run, QuantizedModel::kTapMask);
    float_out = model.model().forward(batch);
  }
  ActivationRecorder quant_run(&model, n);
  at::Tensor quant_out;
  {
    model::ScopedTapObserver attach(taps, &quant_run, QuantizedModel::kTapMask);
    quant_out = model.model().forward(batch);
  }
  model.SetMode(previous);

  std::vector<TapError> report;
  for (int id : model.activation_taps()) {
    const at::Tensor& f = float_run.values()[static_cast<size_t>(id)];
    const at::Tensor& q = quant_run.values()[static_cast<size_t>(id)];
    if (!f.defined() || !q.defined()) continue;  // not reached by this forward
    report.push_back({model.tap(id).name, Sqnr(f, q), CosineSimilarity(f, q)});
  }
  report.push_back({"output", Sqnr(float_out, quant_out), CosineSimilarity(float_out, quant_out)});
  return report;
}

}  // namespace psaq::quant
