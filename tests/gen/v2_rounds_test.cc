#include "gen/v2_rounds.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "model/data/preprocess.h"
#include "model/registry.h"
#include "tests/testing/single_rank_communicator.h"
#include "tests/testing/tiny_models.h"

namespace psaq::gen {
namespace {

using testing::SingleRankCommunicator;

V2Options Tiny() {
  V2Options o;
  o.batch_size = 4;
  o.rounds = 2;
  o.sample_iterations = 3;
  o.student_iterations = 3;
  o.image_warmup = 1;
  o.student_lr = 1e-3;  // large enough to see the student move in 3 steps
  return o;
}

struct Rig {
  model::ModelPtr teacher;
  std::unique_ptr<quant::QuantizedModel> student;
  SingleRankCommunicator comm;
  explicit Rig(model::ModelPtr t, int w_bits = 4, int a_bits = 8) : teacher(std::move(t)) {
    student = std::make_unique<quant::QuantizedModel>(model::CloneModel(*teacher),
                                                      testing::Bits(w_bits, a_bits));
  }
  std::unique_ptr<V2Rounds> Make(const V2Options& o, uint64_t seed = 1) {
    return std::make_unique<V2Rounds>(*teacher, *student, o, seed, comm,
                                      std::vector<std::pair<int64_t, int64_t>>{{0, 4}, {4, 3}}, 7);
  }
};

std::map<std::string, at::Tensor> ToMap(const std::vector<std::pair<std::string, at::Tensor>>& v) {
  return {v.begin(), v.end()};
}

TEST(V2RoundsTest, VariantATrainsTheStudentAndLowersItsDiscrepancy) {
  Rig s(testing::GoldenTeacher());
  V2Options o = Tiny();
  o.student_jitter = false;  // a fixed objective within the student step
  auto rounds = s.Make(o);
  const at::Tensor w0 = s.student->model().named_parameters()["blocks.0.attn.qkv.weight"].clone();
  const at::Tensor b0 = s.student->model().named_parameters()["blocks.0.attn.qkv.bias"].clone();
  std::vector<double> student_d;
  std::vector<std::string> phases;
  rounds->set_progress_callback([&](const V2Progress& p) {
    phases.push_back(p.phase);
    if (p.phase == "student") student_d.push_back(p.loss.discrepancy);
    if (p.phase == "sample") {
      EXPECT_GE(p.loss.discrepancy, 0.0);
    }
  });
  rounds->WarmupAndCalibrate();
  EXPECT_EQ(rounds->completed_rounds(), 0);
  const auto range0 = s.student->activation_quantizer(s.student->TapId("head.out")).range();
  rounds->RunRound();
  rounds->RunRound();
  EXPECT_TRUE(rounds->Done());
  // 2 rounds x (2 batches x 3 sample steps + 3 student steps).
  EXPECT_EQ(phases.size(), 18u);
  ASSERT_EQ(student_d.size(), 6u);
  EXPECT_LT(student_d[2], student_d[0]);
  EXPECT_LT(student_d[5], student_d[3]);
  EXPECT_FALSE(at::equal(s.student->model().named_parameters()["blocks.0.attn.qkv.weight"], w0));
  // Biases are not trained by default, and the teacher never changes.
  EXPECT_TRUE(at::equal(s.student->model().named_parameters()["blocks.0.attn.qkv.bias"], b0));
  EXPECT_TRUE(at::equal(s.teacher->named_parameters()["blocks.0.attn.qkv.weight"], w0));
  // Re-calibrated on the evolved samples.
  const auto range2 = s.student->activation_quantizer(s.student->TapId("head.out")).range();
  EXPECT_NE(range0, range2);
  auto [lo, hi] = model::NormalisedPixelRange(s.teacher->config());
  for (const ImageBatch& b : rounds->batches()) {
    EXPECT_EQ(b.iteration, 6);
    EXPECT_TRUE(at::all(b.images >= lo.view({1, -1, 1, 1})).item().toBool());
    EXPECT_TRUE(at::all(b.images <= hi.view({1, -1, 1, 1})).item().toBool());
  }
  EXPECT_EQ(rounds->timings().image_sample_steps, 2 * 3 * 7);
  EXPECT_EQ(rounds->timings().student_sample_steps, 2 * 3 * 7);
}

TEST(V2RoundsTest, VariantBOnlyRecalibrates) {
  Rig s(testing::GoldenTeacher());
  V2Options o = Tiny();
  o.student_update = StudentUpdate::kRecalibrateOnly;
  auto rounds = s.Make(o);
  const at::Tensor w0 = s.student->model().named_parameters()["head.weight"].clone();
  int student_steps = 0;
  rounds->set_progress_callback(
      [&](const V2Progress& p) { student_steps += p.phase == "student"; });
  rounds->WarmupAndCalibrate();
  const auto range0 = s.student->activation_quantizer(s.student->TapId("head.out")).range();
  rounds->RunRound();
  EXPECT_EQ(student_steps, 0);
  EXPECT_TRUE(at::equal(s.student->model().named_parameters()["head.weight"], w0));
  EXPECT_NE(s.student->activation_quantizer(s.student->TapId("head.out")).range(), range0);
  for (const auto& p : s.student->model().parameters()) EXPECT_FALSE(p.requires_grad());
}

TEST(V2RoundsTest, FeatureDiscrepancyWarmupAndTrainableExtrasOnSwin) {
  Rig s(testing::TinySwinTeacher(), 8, 8);
  V2Options o = Tiny();
  o.rounds = 1;
  o.warmup_iterations = 2;
  o.discrepancy.kind = DiscrepancyKind::kMseFeatures;
  o.weights.l2 = 0.01;
  o.student_parameters = {true, true, true};
  o.image_schedule = ImageSchedule::kGlobal;
  auto rounds = s.Make(o);
  std::vector<std::string> phases;
  rounds->set_progress_callback([&](const V2Progress& p) {
    phases.push_back(p.phase);
    if (p.phase == "warmup") {
      EXPECT_EQ(p.loss.discrepancy, 0.0);
    }
    if (p.phase == "sample") {
      EXPECT_GT(p.loss.l2, 0.0);
      EXPECT_GE(p.loss.discrepancy, 0.0);
    }
  });
  const at::Tensor norm0 =
      s.student->model().named_parameters()["layers.0.blocks.0.norm1.weight"].clone();
  rounds->WarmupAndCalibrate();
  rounds->RunRound();
  EXPECT_EQ(std::count(phases.begin(), phases.end(), "warmup"), 4);
  EXPECT_FALSE(
      at::equal(s.student->model().named_parameters()["layers.0.blocks.0.norm1.weight"], norm0));
  EXPECT_EQ(rounds->batches()[0].iteration, 2 + 3);
}

TEST(V2RoundsTest, ExportedStateResumesBitForBit) {
  V2Options o = Tiny();
  Rig full(testing::GoldenTeacher());
  auto a = full.Make(o);
  a->WarmupAndCalibrate();
  a->RunRound();
  const auto shared = ToMap(a->ExportSharedState());
  const auto rank = ToMap(a->ExportRankState());
  a->RunRound();

  Rig resumed(testing::GoldenTeacher());
  auto b = resumed.Make(o);
  b->ImportState(shared, rank, "memory");
  EXPECT_EQ(b->completed_rounds(), 1);
  b->RunRound();
  for (size_t k = 0; k < a->batches().size(); ++k) {
    EXPECT_TENSOR_IDENTICAL(b->batches()[k].images.detach(), a->batches()[k].images.detach());
  }
  for (const auto& [name, t] : ToMap(a->ExportSharedState())) {
    EXPECT_TENSOR_IDENTICAL(ToMap(b->ExportSharedState()).at(name), t);
  }
  // A state of other batches is refused.
  Rig other(testing::GoldenTeacher());
  auto c = std::make_unique<V2Rounds>(*other.teacher, *other.student, o, 1, other.comm,
                                      std::vector<std::pair<int64_t, int64_t>>{{0, 3}}, 7);
  EXPECT_THROW(c->ImportState(shared, rank, "memory"), std::runtime_error);
}

TEST(V2RoundsTest, OptionsValidateAndName) {
  V2Options o;
  o.student_update = StudentUpdate::kRecalibrateOnly;
  o.recalibrate_each_round = false;
  EXPECT_THROW(ValidateV2Options(o), c10::Error);
  o = V2Options();
  o.image_warmup = 60;  // > K_x = 50 per round
  EXPECT_THROW(ValidateV2Options(o), c10::Error);
  o.image_schedule = ImageSchedule::kGlobal;  // period 500
  ValidateV2Options(o);
  EXPECT_EQ(ParseStudentUpdate("B"), StudentUpdate::kRecalibrateOnly);
  EXPECT_EQ(ParseImageSchedule("global"), ImageSchedule::kGlobal);
  EXPECT_EQ(V2OptionsToJson(V2Options())["rounds"], 10);
}

}  // namespace
}  // namespace psaq::gen
