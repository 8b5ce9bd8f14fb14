#include "gen/detector_v1.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <vector>

namespace psaq::gen {
namespace {

at::Tensor PerChannel(const std::vector<double>& v, const at::Tensor& like) {
  return at::tensor(v, at::kDouble).to(like.options()).reshape({1, -1, 1, 1});
}

}  // namespace

at::Tensor ClassifierSamplesToDetector(const at::Tensor& x, const model::ModelConfig& classifier,
                                       const detect::DetectorConfig& detector, int64_t height,
                                       int64_t width) {
  const int64_t cc = classifier.in_chans(), cd = detector.in_chans;
  TORCH_CHECK(x.dim() == 4 && x.is_floating_point() && x.size(1) == cc,
              "ClassifierSamplesToDetector: samples must be floating point [B, ", cc,
              ", H, W], got ", x.sizes());
  TORCH_CHECK(height >= 1 && width >= 1, "ClassifierSamplesToDetector: bad size ", height, " x ",
              width);
  TORCH_CHECK(cc == cd || cc == 1 || (cc == 3 && cd == 1),
              "ClassifierSamplesToDetector: cannot map ", cc, " classifier channels to ", cd,
              " detector channels");
  at::Tensor p =
      x * PerChannel(classifier.preprocess.std, x) + PerChannel(classifier.preprocess.mean, x);
  if (cc == 1 && cd != 1) p = p.expand({-1, cd, -1, -1});
  if (cc == 3 && cd == 1) p = p.mean(1, /*keepdim=*/true);
  p = at::upsample_bilinear2d(p.contiguous(), {height, width}, /*align_corners=*/false);
  return (p * 255.0 - PerChannel(detector.mean, p)) / PerChannel(detector.std, p);
}

}  // namespace psaq::gen
