// The V2 rounds on a tiny Mask R-CNN teacher and its QuantizedDetector student
// (gen/detector_v2_models.h): the samples' shape and box, the phases, the student trained, and
// the exported state resuming bit for bit.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dist/single_rank_communicator.h"
#include "gen/detector_v2_models.h"
#include "gen/v2_rounds.h"
#include "model/detect/load_detector.h"
#include "quant/quantized_detector.h"
#include "tests/model/detect/tiny_detector.h"

namespace psaq::gen {
namespace {

constexpr int64_t kSize = 64;

V2Options Options() {
  V2Options o;
  o.batch_size = 2;
  o.rounds = 2;
  o.sample_iterations = 2;
  o.student_iterations = 2;
  o.image_warmup = 1;
  o.warmup_iterations = 1;
  o.student_lr = 1e-3;  // large enough to see the student move in a few steps
  return o;
}

struct DetectorPair {
  detect::DetectorPtr teacher;
  std::unique_ptr<quant::QuantizedDetector> student;
  std::unique_ptr<DetectorV2Models> models;
  dist::SingleRankCommunicator comm;
  DetectorPair() {
    torch::manual_seed(1);
    teacher = detect::CreateDetector(detect::testing::TinyDetectorConfig());
    teacher->eval();
    for (auto& p : teacher->parameters()) p.set_requires_grad(false);
    detect::DetectorPtr copy = detect::CreateDetector(teacher->config());
    {
      at::NoGradGuard no_grad;
      auto src = teacher->named_parameters();
      for (auto& p : copy->named_parameters()) p.value().copy_(src[p.key()]);
    }
    copy->eval();
    quant::QuantConfig q;
    q.weight_bits = 4;
    q.act_bits = 8;
    student = std::make_unique<quant::QuantizedDetector>(copy, q);
    models = std::make_unique<DetectorV2Models>(*teacher, *student,
                                                ParseDetectorDiscrepancy("fpn+rpn"), kSize);
  }
  std::unique_ptr<V2Rounds> Make(const V2Options& o) {
    return std::make_unique<V2Rounds>(*models, o, 7, comm,
                                      std::vector<std::pair<int64_t, int64_t>>{{0, 2}, {2, 1}}, 3);
  }
};

TEST(DetectorV2RoundsTest, RunsThePhasesAndTrainsTheStudent) {
  DetectorPair s;
  auto rounds = s.Make(Options());
  std::map<std::string, int> steps;
  std::vector<double> student_d;
  rounds->set_progress_callback([&](const V2Progress& p) {
    ++steps[p.phase];
    if (p.phase == "student") student_d.push_back(p.loss.discrepancy);
  });
  const std::string w = "backbone.stages.0.blocks.0.attn.w_msa.qkv.weight";
  auto params = s.student->detector().named_parameters();
  ASSERT_TRUE(params.contains(w)) << "rename the weight this test watches";
  const at::Tensor w0 = params[w].clone();
  rounds->WarmupAndCalibrate();
  while (!rounds->Done()) rounds->RunRound();
  EXPECT_EQ(steps["warmup"], 2);   // 2 batches x 1
  EXPECT_EQ(steps["sample"], 8);   // 2 rounds x 2 batches x 2
  EXPECT_EQ(steps["student"], 4);  // 2 rounds x 2
  for (double d : student_d) EXPECT_GT(d, 0);
  EXPECT_FALSE(at::equal(params[w], w0));
  for (const ImageBatch& b : rounds->batches()) {
    EXPECT_EQ(b.images.sizes().vec(), (std::vector<int64_t>{b.size(), 3, kSize, kSize}));
    EXPECT_TRUE(b.images.isfinite().all().item<bool>());
  }
}

TEST(DetectorV2RoundsTest, ExportedStateResumesBitForBit) {
  const V2Options o = Options();
  DetectorPair a;
  auto full = a.Make(o);
  full->WarmupAndCalibrate();
  full->RunRound();
  std::map<std::string, at::Tensor> shared, rank;
  for (auto& [k, v] : full->ExportSharedState()) shared[k] = v.clone();
  for (auto& [k, v] : full->ExportRankState()) rank[k] = v.clone();
  full->RunRound();

  DetectorPair b;
  auto resumed = b.Make(o);
  resumed->ImportState(shared, rank, "test state");
  EXPECT_EQ(resumed->completed_rounds(), 1);
  resumed->RunRound();
  for (size_t i = 0; i < full->batches().size(); ++i) {
    EXPECT_TRUE(at::equal(full->batches()[i].images, resumed->batches()[i].images)) << i;
  }
  auto pa = a.student->detector().named_parameters();
  for (auto& p : b.student->detector().named_parameters()) {
    EXPECT_TRUE(at::equal(p.value(), pa[p.key()])) << p.key();
  }
}

TEST(DetectorV2RoundsTest, RejectsBadPairs) {
  DetectorPair s;
  EXPECT_THROW(DetectorV2Models(*s.teacher, *s.student, ParseDetectorDiscrepancy("fpn"), 30),
               c10::Error);
  EXPECT_THROW(DetectorV2Models(*s.teacher, *s.student, {0.0, 0.0, 1e-12}, kSize), c10::Error);
  quant::QuantizedDetector self(s.teacher);
  EXPECT_THROW(DetectorV2Models(*s.teacher, self, ParseDetectorDiscrepancy("fpn"), kSize),
               c10::Error);
}

}  // namespace
}  // namespace psaq::gen
