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

}  // namespace

DetectorDiscrepancyOptions ParseDetectorDiscrepancy(const std::string& terms) {
  DetectorDiscrepancyOptions o;
  if (terms == "fpn") {
    o.fpn_weight = 1, o.rpn_weight = 0;
  } else if (terms == "rpn") {
    o.fpn_weight = 0, o.rpn_weight = 1;
  } else if (terms == "fpn+rpn") {
    o.fpn_weight = 1, o.rpn_weight = 1;
  } else {
    throw std::invalid_argument("unknown detector discrepancy '" + terms +
                                "' (expected fpn, rpn or fpn+rpn)");
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
  return out.empty() ? "none" : out;
}

std::vector<at::Tensor> DetectorDiscrepancyTargets(const detect::DetectorOutputs& outputs,
                                                   const DetectorDiscrepancyOptions& options) {
  std::vector<at::Tensor> out;
  if (options.fpn_weight != 0) out.insert(out.end(), outputs.fpn.begin(), outputs.fpn.end());
  if (options.rpn_weight != 0)
    out.insert(out.end(), outputs.rpn.cls.begin(), outputs.rpn.cls.end());
  return out;
}

at::Tensor DetectorDiscrepancy(const std::vector<at::Tensor>& teacher,
                               const std::vector<at::Tensor>& student,
                               const DetectorDiscrepancyOptions& options) {
  const bool fpn = options.fpn_weight != 0, rpn = options.rpn_weight != 0;
  TORCH_CHECK(fpn || rpn, "DetectorDiscrepancy: every term has weight 0");
  TORCH_CHECK(!teacher.empty() && teacher.size() == student.size(),
              "DetectorDiscrepancy: need the same non-zero number of targets, got ", teacher.size(),
              " and ", student.size());
  // FPN and RPN have one level each per FPN output, so with both terms the list splits in half.
  const size_t split = fpn && rpn ? teacher.size() / 2 : (fpn ? teacher.size() : 0);
  TORCH_CHECK(!(fpn && rpn) || teacher.size() % 2 == 0,
              "DetectorDiscrepancy: fpn+rpn needs as many RPN levels as FPN levels");
  at::Tensor d;
  if (fpn) d = options.fpn_weight * LevelMean(teacher, student, 0, split, true, options.eps);
  if (rpn) {
    at::Tensor r =
        options.rpn_weight * LevelMean(teacher, student, split, teacher.size(), false, options.eps);
    d = d.defined() ? d + r : r;
  }
  return d;
}

}  // namespace psaq::gen
