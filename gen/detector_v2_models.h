// The detector pair for the V2 rounds (gen/v2_rounds.h through gen/v2_models.h): the float
// Mask R-CNN as teacher, a QuantizedDetector of a copy of it as student (docs/detection.md,
// "Data-free generation", a reconstruction: PSAQ-ViT V2's paper gives no detector details).
//   samples    square images of side `image_size` at the detector's normalisation (its mean/std
//              in 0..255 units); the pixel box, default image lr and jitter limit follow from
//              that (Swin's lr, V1's jitter limit scaled to the size);
//   prior      the patch-similarity entropy over every backbone block (always fused,
//              gen/detector_prior.h), TV and L2 as for the classifiers;
//   D          gen/detector_discrepancy.h on the FPN levels and/or RPN objectness, optionally
//              with the RoI heads on the teacher's top proposals; teacher and student forwards
//              stop there (after the FPN, or the RPN when D uses it or the RoI term needs the
//              teacher's proposals; the heads then run on those RoIs only: final detections and
//              mask pasting would not change D);
//   student    the latent weights of every weight tap in the quantization scope's quantizers
//              (gen/v2_student.h), ranges from quant/calibration.h's detector calibration.
// No labels anywhere. Both models must outlive this object.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gen/detector_discrepancy.h"
#include "gen/detector_prior.h"
#include "gen/v2_models.h"
#include "model/config.h"
#include "model/detect/mask_rcnn.h"
#include "quant/quantized_detector.h"

namespace psaq::gen {

// The ModelConfig that describes square samples of side `size` for `detector`: arch Swin (the
// backbone; selects the image lr), img_size `size`, the detector's channels and its mean/std
// divided by 255. REQUIRES (TORCH_CHECK): size a positive multiple of detector.size_divisor().
model::ModelConfig DetectorImageConfig(const detect::DetectorConfig& detector, int64_t size);

class DetectorV2Models : public StudentBankV2Models {
 public:
  // REQUIRES (TORCH_CHECK): `student` wraps a detector with the teacher's config; a non-empty
  // discrepancy; image_size as DetectorImageConfig.
  DetectorV2Models(detect::MaskRcnn& teacher, quant::QuantizedDetector& student,
                   const DetectorDiscrepancyOptions& discrepancy, int64_t image_size);

  const model::ModelConfig& image_config() const override { return image_config_; }
  at::Device device() const override;
  KdeOptions EntropyKde(const KdeOptions& requested) const override;
  TeacherPass Teacher(const at::Tensor& x, bool av_means) override;
  at::Tensor Discrepancy(const at::Tensor& x,
                         const std::vector<at::Tensor>& teacher_targets) override;
  void Calibrate(const std::vector<at::Tensor>& images, dist::Communicator& comm,
                 bool again) override;

 private:
  DetectorTeacher teacher_;
  quant::QuantizedDetector& student_;
  DetectorDiscrepancyOptions discrepancy_;
  detect::DetectorStage until_;  // the last stage D reads
  model::ModelConfig image_config_;
};

}  // namespace psaq::gen
