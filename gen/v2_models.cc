#include "gen/v2_models.h"

#include "quant/calibration.h"

namespace psaq::gen {

std::vector<std::pair<std::string, at::Tensor>> StudentBankV2Models::SelectTrainable(
    const StudentParameterOptions& options) {
  return SelectStudentParameters(bank_, options);
}

dist::GradSyncStats StudentBankV2Models::BroadcastStudent(dist::Communicator& comm) {
  return gen::BroadcastStudent(comm, bank_);
}

std::vector<std::pair<std::string, at::Tensor>> StudentBankV2Models::ExportStudent() const {
  return ExportStudentState(bank_);
}

void StudentBankV2Models::ImportStudent(const std::map<std::string, at::Tensor>& tensors,
                                        const std::string& source) {
  ImportStudentState(bank_, tensors, source);
  bank_.SetMode(quant::TapQuantizers::Mode::kQuantized);
}

ClassifierV2Models::ClassifierV2Models(model::VisionModel& teacher, quant::QuantizedModel& student,
                                       const DiscrepancyOptions& discrepancy, bool capture_av_means)
    : StudentBankV2Models(student),
      teacher_(teacher),
      student_(student),
      discrepancy_(discrepancy),
      teacher_capture_(teacher,
                       {capture_av_means, discrepancy.kind == DiscrepancyKind::kMseFeatures}),
      student_capture_(student.model(), {false, true}, &student) {}

at::Device ClassifierV2Models::device() const {
  for (const auto& p : teacher_.parameters()) return p.device();
  return at::kCPU;
}

TeacherPass ClassifierV2Models::Teacher(const at::Tensor& x, bool av_means) {
  TeacherPass pass;
  at::Tensor logits = teacher_capture_.Forward(x);
  if (av_means) pass.av_means = teacher_capture_.av_means();
  if (discrepancy_.kind == DiscrepancyKind::kKlLogits) {
    pass.targets.push_back(logits);
  } else {
    pass.targets = teacher_capture_.block_outputs();
  }
  teacher_capture_.Clear();
  return pass;
}

at::Tensor ClassifierV2Models::Discrepancy(const at::Tensor& x,
                                           const std::vector<at::Tensor>& teacher_targets) {
  if (discrepancy_.kind == DiscrepancyKind::kKlLogits) {
    TORCH_CHECK(teacher_targets.size() == 1, "ClassifierV2Models: expected the teacher's logits");
    return KlDiscrepancy(teacher_targets[0], student_.Forward(x), discrepancy_);
  }
  student_capture_.Forward(x);
  at::Tensor d = FeatureMseDiscrepancy(teacher_targets, student_capture_.block_outputs());
  student_capture_.Clear();
  return d;
}

void ClassifierV2Models::Calibrate(const std::vector<at::Tensor>& images, dist::Communicator& comm,
                                   bool again) {
  CalibrateStudent(student_, images, comm, again);
}

}  // namespace psaq::gen
