#include "gen/detector_prior.h"

namespace psaq::gen {

DetectorTeacher::DetectorTeacher(detect::MaskRcnn& detector)
    : detector_(detector), capture_(detector.taps(), detector.block_paths(), {true, false}) {}

DetectorTeacherPass DetectorTeacher::Forward(const at::Tensor& x, bool av_means,
                                             detect::DetectorStage until) {
  DetectorTeacherPass pass;
  if (!av_means) {
    pass.outputs = detector_.Features(x, until);
    return pass;
  }
  pass.outputs = capture_.Run([&] { return detector_.Features(x, until); });
  pass.av_means = capture_.av_means();
  capture_.Clear();
  return pass;
}

KdeOptions DetectorEntropyKde(KdeOptions kde) {
  // Never the reference at detector sizes: see the header.
  kde.implementation = KdeImplementation::kFused;
  return kde;
}

LossTerms DetectorSampleLoss(const DetectorTeacherPass& teacher, const at::Tensor& x_jittered,
                             double tv_target, const at::Tensor& discrepancy,
                             const V2SampleWeights& weights, KdeOptions kde) {
  return V2SampleLoss(teacher.av_means, x_jittered, tv_target, discrepancy, weights,
                      DetectorEntropyKde(kde));
}

}  // namespace psaq::gen
