// The teacher-student pair the V2 rounds (gen/v2_rounds.h) run on: everything the rounds do with
// a model goes through this interface, so one implementation of the rounds (sharding, exact
// global mean, RNG streams, gradient sync, checkpoint state) serves the classifiers
// (ClassifierV2Models below) and the detector (gen/detector_v2_models.h).
//
// The teacher is float and fixed; the student is a quantized copy whose latent parameters the
// student step trains. The discrepancy D compares "targets": tensors of the teacher's forward
// that the implementation chooses (logits, block outputs, FPN levels ...), opaque to the rounds,
// which only cache them between student iterations.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "dist/communicator.h"
#include "dist/grad_sync.h"
#include "gen/feature_capture.h"
#include "gen/kde_options.h"
#include "gen/objective.h"
#include "gen/v2_student.h"
#include "model/config.h"
#include "model/vision_model.h"
#include "quant/calibration.h"
#include "quant/quantized_model.h"

namespace psaq::gen {

// One teacher forward.
struct TeacherPass {
  std::vector<at::Tensor> av_means;  // every block's A·V mean, in block order (when asked)
  std::vector<at::Tensor> targets;   // what Discrepancy compares the student with
};

class V2Models {
 public:
  virtual ~V2Models() = default;

  // The samples X: size and channels (img_size(), in_chans()), the pixel box
  // (model/data/preprocess.h NormalisedPixelRange) and the architecture for the default image
  // learning rate and jitter limit.
  virtual const model::ModelConfig& image_config() const = 0;
  // The device of both models (X lives there).
  virtual at::Device device() const = 0;
  // The entropy's KDE options to use, given the requested ones (an implementation may force the
  // fused entropy). Default: as requested.
  virtual KdeOptions EntropyKde(const KdeOptions& requested) const { return requested; }

  // The teacher on x [B, C, H, W]: av_means when `av_means`, and the targets. Differentiable
  // w.r.t. x when grad mode is on.
  virtual TeacherPass Teacher(const at::Tensor& x, bool av_means) = 0;
  // The student (in its current mode) on x, compared with the teacher's targets of the same x:
  // D_b [B], differentiable w.r.t. x and the student's parameters.
  virtual at::Tensor Discrepancy(const at::Tensor& x,
                                 const std::vector<at::Tensor>& teacher_targets) = 0;

  // The student, as gen/v2_student.h and quant/calibration.h handle it.
  virtual std::vector<std::pair<std::string, at::Tensor>> SelectTrainable(
      const StudentParameterOptions& options) = 0;
  // Collective: the student's parameters and buffers become rank 0's.
  virtual dist::GradSyncStats BroadcastStudent(dist::Communicator& comm) = 0;
  // Collective: the student's activation ranges from all ranks' images (merged); leaves it in
  // kQuantized mode. `again`: a recalibration of an already calibrated student.
  virtual void Calibrate(const std::vector<at::Tensor>& images, dist::Communicator& comm,
                         bool again) = 0;
  virtual std::vector<std::pair<std::string, at::Tensor>> ExportStudent() const = 0;
  // Restores ExportStudent's state (throws std::runtime_error naming `source`) and puts the
  // student in kQuantized mode.
  virtual void ImportStudent(const std::map<std::string, at::Tensor>& tensors,
                             const std::string& source) = 0;
};

// The student half of V2Models that every pair shares: a student that is a quantizer bank
// (quant::TapQuantizers: QuantizedModel, QuantizedDetector) is selected, broadcast, exported and
// restored the same way (gen/v2_student.h). Derived pairs add the teacher, D and the calibration
// (whose forward depends on the model). The bank must outlive this object.
// V2Models::Calibrate for a student of either kind: quant::Calibrate, or with `again`
// quant::Recalibrate (quant/calibration.h), over `comm`.
template <typename Student>
void CalibrateStudent(Student& student, const std::vector<at::Tensor>& images,
                      dist::Communicator& comm, bool again) {
  if (again) {
    quant::Recalibrate(student, images, &comm);
  } else {
    quant::Calibrate(student, images, &comm);
  }
}

class StudentBankV2Models : public V2Models {
 public:
  std::vector<std::pair<std::string, at::Tensor>> SelectTrainable(
      const StudentParameterOptions& options) override;
  dist::GradSyncStats BroadcastStudent(dist::Communicator& comm) override;
  std::vector<std::pair<std::string, at::Tensor>> ExportStudent() const override;
  void ImportStudent(const std::map<std::string, at::Tensor>& tensors,
                     const std::string& source) override;

 protected:
  explicit StudentBankV2Models(quant::TapQuantizers& student_bank) : bank_(student_bank) {}

 private:
  quant::TapQuantizers& bank_;
};

// A classifier teacher and its QuantizedModel student. D (options.kind): KL on the logits, or
// the MSE of the block outputs (gen/objective.h). Both models must outlive this object.
class ClassifierV2Models : public StudentBankV2Models {
 public:
  // REQUIRES (TORCH_CHECK): `student` wraps a model with the teacher's block paths.
  ClassifierV2Models(model::VisionModel& teacher, quant::QuantizedModel& student,
                     const DiscrepancyOptions& discrepancy, bool capture_av_means);

  const model::ModelConfig& image_config() const override { return teacher_.config(); }
  at::Device device() const override;
  TeacherPass Teacher(const at::Tensor& x, bool av_means) override;
  at::Tensor Discrepancy(const at::Tensor& x,
                         const std::vector<at::Tensor>& teacher_targets) override;
  void Calibrate(const std::vector<at::Tensor>& images, dist::Communicator& comm,
                 bool again) override;

 private:
  model::VisionModel& teacher_;
  quant::QuantizedModel& student_;
  DiscrepancyOptions discrepancy_;
  FeatureCapture teacher_capture_;
  FeatureCapture student_capture_;
};

}  // namespace psaq::gen
