#include "gen/detector_discrepancy.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <sstream>
#include <stdexcept>

namespace psaq::gen {
namespace {

// Per-image squared error of one level over the teacher's (detached) energy: [B].
at::Tensor NormalisedSquaredError(const at::Tensor& t, const at::Tensor& s, double eps) {
  const int64_t b = t.size(0);
  at::Tensor err = (t - s).pow(2).reshape({b, -1}).sum(1);
  at::Tensor energy = t.detach().pow(2).reshape({b, -1}).sum(1);
  return err / (energy + eps);
}

// Per-image mean over anchors of KL(Bernoulli(sigmoid(t)) || Bernoulli(sigmoid(s))): [B].
// log p = logsigmoid(x), log(1 - p) = logsigmoid(-x).
at::Tensor BinaryKl(const at::Tensor& t, const at::Tensor& s) {
  const int64_t b = t.size(0);
  at::Tensor lt1 = at::log_sigmoid(t), lt0 = at::log_sigmoid(-t);
  at::Tensor ls1 = at::log_sigmoid(s), ls0 = at::log_sigmoid(-s);
  at::Tensor kl = lt1.exp() * (lt1 - ls1) + lt0.exp() * (lt0 - ls0);
  return kl.reshape({b, -1}).mean(1);
}

at::Tensor LevelMean(const std::vector<at::Tensor>& t, const std::vector<at::Tensor>& s,
                     size_t begin, size_t end, bool fpn, double eps) {
  at::Tensor sum;
  for (size_t i = begin; i < end; ++i) {
    TORCH_CHECK(t[i].dim() >= 2 && t[i].sizes() == s[i].sizes(), "DetectorDiscrepancy: target ", i,
                " shapes ", t[i].sizes(), " and ", s[i].sizes());
    at::Tensor d = fpn ? NormalisedSquaredError(t[i], s[i], eps) : BinaryKl(t[i], s[i]);
    sum = sum.defined() ? sum + d : d;
  }
  return sum / static_cast<double>(end - begin);
}

// Per-image mean over image b's RoIs (rois[:, 0]) of the box-head softmax KL plus the mask
// logits' mean binary KL: [B] (0 for an image without RoIs).
at::Tensor RoiTerm(const at::Tensor& t_cls, const at::Tensor& s_cls, const at::Tensor& t_mask,
                   const at::Tensor& s_mask, const at::Tensor& rois, int64_t batch) {
  TORCH_CHECK(t_cls.sizes() == s_cls.sizes() && t_mask.sizes() == s_mask.sizes() &&
                  t_cls.dim() == 2 && t_cls.size(0) == rois.size(0) &&
                  t_mask.size(0) == rois.size(0),
              "DetectorDiscrepancy: RoI head outputs ", t_cls.sizes(), " ", s_cls.sizes(), " ",
              t_mask.sizes(), " ", s_mask.sizes(), " for ", rois.size(0), " RoIs");
  at::Tensor per_image = at::zeros({batch}, t_cls.options());
  if (rois.size(0) == 0) return per_image;
  const at::Tensor lt = at::log_softmax(t_cls, 1), ls = at::log_softmax(s_cls, 1);
  const at::Tensor per_roi = (lt.exp() * (lt - ls)).sum(1) + BinaryKl(t_mask, s_mask);
  const at::Tensor image = rois.select(1, 0).to(at::kLong);
  const at::Tensor count =
      at::zeros({batch}, t_cls.options()).index_add(0, image, at::ones_like(per_roi));
  return per_image.index_add(0, image, per_roi) / count.clamp_min(1);
}

}  // namespace

DetectorDiscrepancyOptions ParseDetectorDiscrepancy(const std::string& terms) {
  DetectorDiscrepancyOptions o;
  if (terms == "fpn") {
    o.fpn_weight = 1, o.rpn_weight = 0;
  } else if (terms == "rpn") {
    o.fpn_weight = 0, o.rpn_weight = 1;
  } else if (terms == "fpn+rpn") {
    o.fpn_weight = 1, o.rpn_weight = 1;
  } else if (terms == "fpn+roi") {
    o.fpn_weight = 1, o.rpn_weight = 0, o.roi_weight = 1;
  } else if (terms == "fpn+rpn+roi") {
    o.fpn_weight = 1, o.rpn_weight = 1, o.roi_weight = 1;
  } else {
    throw std::invalid_argument("unknown detector discrepancy '" + terms +
                                "' (expected fpn, rpn, fpn+rpn, fpn+roi or fpn+rpn+roi)");
  }
  return o;
}

std::string DetectorDiscrepancyName(const DetectorDiscrepancyOptions& o) {
  auto term = [](const char* name, double w) {
    std::ostringstream s;
    s << name;
    if (w != 1) s << "*" << w;
    return s.str();
  };
  std::string out;
  if (o.fpn_weight != 0) out = term("fpn", o.fpn_weight);
  if (o.rpn_weight != 0) out += (out.empty() ? "" : "+") + term("rpn", o.rpn_weight);
  if (o.roi_weight != 0) out += (out.empty() ? "" : "+") + term("roi", o.roi_weight);
  return out.empty() ? "none" : out;
}

std::vector<at::Tensor> DetectorDiscrepancyTargets(const detect::DetectorOutputs& outputs,
                                                   const DetectorDiscrepancyOptions& options,
                                                   const detect::RoiHeadOutputs* heads,
                                                   const at::Tensor& rois) {
  std::vector<at::Tensor> out;
  if (options.fpn_weight != 0) out.insert(out.end(), outputs.fpn.begin(), outputs.fpn.end());
  if (options.rpn_weight != 0)
    out.insert(out.end(), outputs.rpn.cls.begin(), outputs.rpn.cls.end());
  if (options.roi_weight != 0) {
    TORCH_CHECK(heads != nullptr && rois.defined() && rois.dim() == 2 && rois.size(1) == 5,
                "DetectorDiscrepancyTargets: the RoI term needs the heads' outputs and rois [R, 5]");
    out.push_back(heads->cls_score);
    out.push_back(heads->mask_logits);
    out.push_back(rois);
  }
  return out;
}

at::Tensor DetectorDiscrepancy(const std::vector<at::Tensor>& teacher,
                               const std::vector<at::Tensor>& student,
                               const DetectorDiscrepancyOptions& options) {
  const bool fpn = options.fpn_weight != 0, rpn = options.rpn_weight != 0;
  const bool roi = options.roi_weight != 0;
  TORCH_CHECK(fpn || rpn, "DetectorDiscrepancy: the FPN and RPN terms both have weight 0");
  const size_t tail = roi ? 3 : 0;  // cls_score, mask_logits, rois
  TORCH_CHECK(teacher.size() > tail && teacher.size() == student.size(),
              "DetectorDiscrepancy: need the same number of targets (more than ", tail, "), got ",
              teacher.size(), " and ", student.size());
  const size_t levels = teacher.size() - tail;
  // FPN and RPN have one level each per FPN output, so with both terms the list splits in half.
  const size_t split = fpn && rpn ? levels / 2 : (fpn ? levels : 0);
  TORCH_CHECK(!(fpn && rpn) || levels % 2 == 0,
              "DetectorDiscrepancy: fpn+rpn needs as many RPN levels as FPN levels");
  at::Tensor d;
  if (fpn) d = options.fpn_weight * LevelMean(teacher, student, 0, split, true, options.eps);
  if (rpn) {
    at::Tensor r =
        options.rpn_weight * LevelMean(teacher, student, split, levels, false, options.eps);
    d = d.defined() ? d + r : r;
  }
  if (roi) {
    TORCH_CHECK(teacher[levels + 2].equal(student[levels + 2]),
                "DetectorDiscrepancy: teacher and student heads ran on different RoIs");
    d = d + options.roi_weight * RoiTerm(teacher[levels], student[levels], teacher[levels + 1],
                                         student[levels + 1], teacher[levels + 2], d.size(0));
  }
  return d;
}

}  // namespace psaq::gen
