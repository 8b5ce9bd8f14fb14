#include "gen/detector_v2_models.h"

#include <c10/util/Exception.h>

#include "model/detect/roi_extractor.h"
#include "quant/calibration.h"

namespace psaq::gen {
namespace {

// The first `per_image` RPN proposals of each image (test-time NMS settings), as detached RoIs
// [R, 5]: where the RoI term compares the heads.
at::Tensor TopProposalRois(const detect::MaskRcnn& detector, const detect::DetectorOutputs& out,
                           int64_t height, int64_t width, int64_t per_image) {
  at::NoGradGuard no_grad;
  const detect::DetectorConfig& c = detector.config();
  std::vector<at::Tensor> per_image_boxes;
  const int64_t batch = out.fpn.front().size(0);
  for (int64_t b = 0; b < batch; ++b) {
    at::Tensor boxes, scores;
    detector.Proposals(out.rpn, b, height, width, c.rpn_nms_pre, c.rpn_max_per_img, boxes, scores);
    per_image_boxes.push_back(boxes.slice(0, 0, per_image));
  }
  return detect::BoxesToRois(per_image_boxes).detach();
}

}  // namespace

model::ModelConfig DetectorImageConfig(const detect::DetectorConfig& detector, int64_t size) {
  TORCH_CHECK(size > 0 && size % detector.size_divisor() == 0,
              "DetectorImageConfig: the generation size must be a positive multiple of ",
              detector.size_divisor(), ", got ", size);
  model::ModelConfig c;
  c.name = detector.name;
  c.arch = model::Arch::kSwin;
  c.swin.img_size = static_cast<int>(size);
  c.swin.in_chans = detector.in_chans;
  c.preprocess.mean.clear();
  c.preprocess.std.clear();
  for (double m : detector.mean) c.preprocess.mean.push_back(m / 255.0);
  for (double s : detector.std) c.preprocess.std.push_back(s / 255.0);
  return c;
}

DetectorV2Models::DetectorV2Models(detect::MaskRcnn& teacher, quant::QuantizedDetector& student,
                                   const DetectorDiscrepancyOptions& discrepancy,
                                   int64_t image_size)
    : StudentBankV2Models(student),
      teacher_(teacher),
      student_(student),
      discrepancy_(discrepancy),
      until_(discrepancy.rpn_weight != 0 || discrepancy.roi_weight != 0
                 ? detect::DetectorStage::kRpn
                 : detect::DetectorStage::kFpn),
      image_config_(DetectorImageConfig(teacher.config(), image_size)) {
  TORCH_CHECK(&student.detector() != &teacher,
              "DetectorV2Models: the student must quantize a copy of the teacher");
  TORCH_CHECK(student.detector().block_paths() == teacher.block_paths(),
              "DetectorV2Models: student and teacher have different backbones");
  TORCH_CHECK(discrepancy.fpn_weight != 0 || discrepancy.rpn_weight != 0,
              "DetectorV2Models: the discrepancy has no FPN or RPN term");
  TORCH_CHECK(discrepancy.roi_per_image >= 1, "DetectorV2Models: roi_per_image must be >= 1");
}

at::Device DetectorV2Models::device() const {
  for (const auto& p : student_.detector().parameters()) return p.device();
  return at::kCPU;
}

KdeOptions DetectorV2Models::EntropyKde(const KdeOptions& requested) const {
  return DetectorEntropyKde(requested);
}

TeacherPass DetectorV2Models::Teacher(const at::Tensor& x, bool av_means) {
  DetectorTeacherPass pass = teacher_.Forward(x, av_means, until_);
  if (discrepancy_.roi_weight == 0) {
    return {std::move(pass.av_means), DetectorDiscrepancyTargets(pass.outputs, discrepancy_)};
  }
  detect::MaskRcnn& detector = teacher_.detector();
  const at::Tensor rois = TopProposalRois(detector, pass.outputs, x.size(2), x.size(3),
                                          discrepancy_.roi_per_image);
  const detect::RoiHeadOutputs heads = detector.HeadsOnRois(pass.outputs.fpn, rois);
  return {std::move(pass.av_means),
          DetectorDiscrepancyTargets(pass.outputs, discrepancy_, &heads, rois)};
}

at::Tensor DetectorV2Models::Discrepancy(const at::Tensor& x,
                                         const std::vector<at::Tensor>& teacher_targets) {
  const detect::DetectorOutputs out = student_.Forward(x, until_);
  if (discrepancy_.roi_weight == 0) {
    return DetectorDiscrepancy(teacher_targets, DetectorDiscrepancyTargets(out, discrepancy_),
                               discrepancy_);
  }
  const at::Tensor& rois = teacher_targets.back();  // DetectorDiscrepancyTargets' layout
  const detect::RoiHeadOutputs heads = student_.HeadsOnRois(out.fpn, rois);
  return DetectorDiscrepancy(teacher_targets,
                             DetectorDiscrepancyTargets(out, discrepancy_, &heads, rois),
                             discrepancy_);
}

void DetectorV2Models::Calibrate(const std::vector<at::Tensor>& images, dist::Communicator& comm,
                                 bool again) {
  CalibrateStudent(student_, images, comm, again);
}

}  // namespace psaq::gen
