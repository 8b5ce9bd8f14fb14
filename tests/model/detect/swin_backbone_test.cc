// The detector's Swin backbone: output shapes at several input sizes (with and without window
// padding), mmdetection's zero padding of the normalised map, the rectangular shift mask against
// mmdet's slice labelling, equality with psaq's timm classifier Swin (converted weights) where
// both apply, PatchMerging's nn.Unfold channel order, and the taps.
#include "model/detect/swin_backbone.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "model/detect/load_detector.h"
#include "model/patch_merging.h"
#include "model/registry.h"
#include "model/state_dict.h"
#include "model/swin_block.h"
#include "tests/model/detect/tiny_detector.h"
#include "tests/model/tap_observers.h"
#include "tests/testing/tensor_near.h"
#include "tests/testing/tolerances.h"

namespace psaq::detect {
namespace {

using model::TapKind;
using model::TapScope;
using model::TapSet;

struct Backbone {
  explicit Backbone(const DetectorConfig& c)
      : taps(std::make_shared<TapSet>()), net(c, TapScope(taps, "backbone")) {}
  std::shared_ptr<TapSet> taps;
  SwinBackbone net;
};

TEST(SwinBackboneTest, StageShapesAtSeveralInputSizes) {
  torch::manual_seed(0);
  const DetectorConfig c = testing::TinyDetectorConfig();
  Backbone b(c);
  // 64: maps 16, 8, 4, 2 (all padded to 21, 14, 7, 7); 96x128: 24x32 (padded to 28x35), ...;
  // 224: 56, 28, 14, 7 (no padding anywhere).
  for (const auto& [h, w] :
       std::vector<std::pair<int64_t, int64_t>>{{64, 64}, {96, 128}, {224, 224}}) {
    const at::Tensor x = at::randn({2, 3, h, w});
    const BackboneOutputs out = b.net->forward(x);
    ASSERT_EQ(out.features.size(), 4u);
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(out.features[i].sizes().vec(),
                (std::vector<int64_t>{2, 8 << i, h / (4 << i), w / (4 << i)}))
          << h << "x" << w << " stage " << i;
      EXPECT_TRUE(at::isfinite(out.features[i]).all().item<bool>());
    }
  }
}

TEST(SwinBackboneTest, RefusesSizesThatAreNotMultiplesOf32) {
  Backbone b(testing::TinyDetectorConfig());
  EXPECT_THROW(b.net->forward(at::randn({1, 3, 48, 64})), c10::Error);
  EXPECT_THROW(b.net->forward(at::randn({1, 1, 64, 64})), c10::Error);
  try {
    b.net->forward(at::randn({1, 3, 64, 40}));
    FAIL() << "no error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("multiples of 32"), std::string::npos) << e.what();
  }
}

// mmdet's ShiftWindowMSA labels the padded map with slices (0, -W), (-W, -S), (-S, None) on each
// axis; two tokens of a window attend (0) when their labels match, else -100.
TEST(SwinBackboneTest, RectangularShiftMaskMatchesMmdetSlices) {
  const int64_t H = 4, Wd = 6;
  const int ws = 2, s = 1;
  at::Tensor label = at::zeros({H, Wd});
  const std::vector<std::pair<int64_t, int64_t>> bands_h = {
      {0, H - ws}, {H - ws, H - s}, {H - s, H}};
  const std::vector<std::pair<int64_t, int64_t>> bands_w = {
      {0, Wd - ws}, {Wd - ws, Wd - s}, {Wd - s, Wd}};
  int cnt = 0;
  for (auto [h0, h1] : bands_h) {
    for (auto [w0, w1] : bands_w) {
      label.slice(0, h0, h1).slice(1, w0, w1).fill_(cnt++);
    }
  }
  // Windows row-major over the grid, tokens row-major in a window.
  std::vector<at::Tensor> windows;
  for (int64_t wy = 0; wy < H / ws; ++wy) {
    for (int64_t wx = 0; wx < Wd / ws; ++wx) {
      windows.push_back(
          label.slice(0, wy * ws, wy * ws + ws).slice(1, wx * ws, wx * ws + ws).reshape({-1}));
    }
  }
  const at::Tensor lw = at::stack(windows);  // [nW, N]
  const at::Tensor expected =
      at::where(lw.unsqueeze(1) != lw.unsqueeze(2), at::full({}, -100.0), at::full({}, 0.0));
  EXPECT_TENSOR_IDENTICAL(model::ShiftedWindowMask(H, Wd, ws, s), expected.to(at::kFloat));
}

// A 3x3 map with window 2 is padded to 4x4: the window at (2, 2) holds one real token and three
// zero tokens (zeros AFTER norm1, so their keys/values are the qkv bias), as mmdet pads.
TEST(SwinBackboneTest, PadsTheNormalisedMapWithZerosAsMmdet) {
  torch::manual_seed(1);
  auto taps = std::make_shared<TapSet>();
  SwinDetBlock block(4, 1, 2, /*shift=*/false, 4, true, 1e-5, TapScope(taps, "blk"));
  block->to(at::kDouble);
  const at::Tensor x = at::randn({1, 3, 3, 4}, at::kDouble);
  at::Tensor add1;
  psaq::testing::ReplacingObserver capture({{"blk.add1", [&](const at::Tensor& t) {
                                               add1 = t.clone();
                                               return t;
                                             }}});
  model::ScopedTapObserver scoped(*taps, &capture);
  block->forward(x);
  ASSERT_TRUE(add1.defined());

  auto modules = block->named_modules();
  auto* norm1 = modules["norm1"]->as<torch::nn::LayerNormImpl>();
  auto* attn = modules["attn.w_msa"]->as<model::WindowAttentionImpl>();
  ASSERT_NE(norm1, nullptr);
  ASSERT_NE(attn, nullptr);
  const at::Tensor h = norm1->forward(x);  // [1, 3, 3, C]
  // The corner window: token (2, 2) then three padded zeros.
  at::Tensor window = at::zeros({1, 4, 4}, at::kDouble);
  window[0][0] = h[0][2][2];
  const at::Tensor y = attn->forward(window);
  EXPECT_TENSOR_NEAR_REL(add1[0][2][2], x[0][2][2] + y[0][0], psaq::testing::kFloat64ParityRel);
  // The window at (0, 2): tokens (0, 2), pad, (1, 2), pad.
  window = at::zeros({1, 4, 4}, at::kDouble);
  window[0][0] = h[0][0][2];
  window[0][2] = h[0][1][2];
  const at::Tensor y2 = attn->forward(window);
  EXPECT_TENSOR_NEAR_REL(add1[0][1][2], x[0][1][2] + y2[0][2], psaq::testing::kFloat64ParityRel);
}

// Where timm neither clips the window nor mmdet pads (every map a multiple of the window and
// larger than it), the two Swins compute the same function: psaq's timm classifier, converted
// with mmdet's swin_converter, gives the same block outputs and the same last stage.
TEST(SwinBackboneTest, EqualsTheTimmClassifierSwinForConvertedWeights) {
  torch::manual_seed(2);
  model::ModelConfig mc;
  mc.name = "swin_128";
  mc.arch = model::Arch::kSwin;
  mc.swin.img_size = 128;  // maps 32, 16, 8, 4
  mc.swin.embed_dim = 8;
  mc.swin.depths = {2, 2, 2, 2};
  mc.swin.num_heads = {1, 1, 2, 2};
  mc.swin.window_size = 2;
  mc.swin.num_classes = 0;
  model::ModelPtr classifier = model::CreateModel(mc);
  classifier->to(at::kDouble);

  DetectorConfig dc = testing::TinyDetectorConfig();
  dc.window_size = 2;
  Backbone b(dc);
  b.net->to(at::kDouble);
  std::map<std::string, at::Tensor> timm;
  for (const auto& [name, t] : model::StateDict(*classifier)) timm[name] = t;
  std::map<std::string, at::Tensor> converted = ConvertTimmSwinToBackbone(timm);
  // The converter drops timm's final norm (as mmdet); here norm3 takes it so the last stage is
  // comparable, and norm0..2 keep their own values.
  std::map<std::string, at::Tensor> state;
  for (const auto& [name, t] : model::StateDict(*b.net)) state["backbone." + name] = t;
  for (auto& [name, t] : converted) state[name] = t;
  state["backbone.norm3.weight"] = timm.at("norm.weight");
  state["backbone.norm3.bias"] = timm.at("norm.bias");
  std::map<std::string, at::Tensor> stripped;
  for (auto& [name, t] : state) stripped[name.substr(9)] = t;
  model::LoadStateDict(*b.net, stripped, "converted");

  const at::Tensor x = at::randn({2, 3, 128, 128}, at::kDouble);
  psaq::testing::FeatureRecorder timm_features, det_features;
  at::Tensor timm_norm;
  {
    psaq::testing::ReplacingObserver capture({{"norm.out", [&](const at::Tensor& t) {
                                                 timm_norm = t.clone();
                                                 return t;
                                               }}});
    model::ScopedTapObserver s1(classifier->taps(), &capture);
    classifier->forward(x);
  }
  {
    model::ScopedTapObserver s1(classifier->taps(), &timm_features);
    classifier->forward(x);
  }
  BackboneOutputs out;
  {
    model::ScopedTapObserver s2(*b.taps, &det_features);
    out = b.net->forward(x);
  }
  int compared = 0;
  for (int s = 0; s < 4; ++s) {
    for (int j = 0; j < 2; ++j) {
      const std::string t = "layers." + std::to_string(s) + ".blocks." + std::to_string(j) + ".out";
      const std::string d =
          "backbone.stages." + std::to_string(s) + ".blocks." + std::to_string(j) + ".out";
      ASSERT_TRUE(timm_features.features.count(t) && det_features.features.count(d)) << t;
      EXPECT_TENSOR_NEAR_REL(det_features.features[d], timm_features.features[t],
                             psaq::testing::kFloat64ParityRel);
      ++compared;
    }
  }
  EXPECT_EQ(compared, 8);
  ASSERT_TRUE(timm_norm.defined());
  EXPECT_TENSOR_NEAR_REL(out.features[3], timm_norm.permute({0, 3, 1, 2}),
                         psaq::testing::kFloat64ParityRel);
}

// nn.Unfold (at::im2col, the op mmdet's PatchMerging calls) orders the 4C merged channels
// c·4 + kh·2 + kw; the kUnfold PatchMerging must equal im2col -> LayerNorm -> reduction.
TEST(PatchMergingOrderTest, UnfoldOrderEqualsIm2col) {
  torch::manual_seed(3);
  auto taps = std::make_shared<TapSet>();
  model::PatchMerging merge(model::PatchMergingOptions(3).channel_order(model::MergeOrder::kUnfold),
                            TapScope(taps, "m"));
  merge->to(at::kDouble);
  {
    torch::NoGradGuard g;
    for (auto& p : merge->parameters()) p.normal_();
  }
  const at::Tensor x = at::randn({2, 4, 6, 3}, at::kDouble);  // NHWC
  const at::Tensor cols =
      at::im2col(x.permute({0, 3, 1, 2}), {2, 2}, {1, 1}, {0, 0}, {2, 2});  // [B, 4C, L]
  const at::Tensor merged = cols.transpose(1, 2).reshape({2, 2, 3, 12});
  auto params = merge->named_parameters();
  const at::Tensor ref =
      at::linear(at::layer_norm(merged, {12}, params["norm.weight"], params["norm.bias"], 1e-5),
                 params["reduction.weight"]);
  EXPECT_TENSOR_NEAR_REL(merge->forward(x), ref, psaq::testing::kFloat64ParityRel);
}

// A checkpoint written in mmdet's (unfold) order gives the same output as psaq's timm-order
// module with the original weights, and the conversion round-trips.
TEST(PatchMergingOrderTest, MmdetOrderedWeightsGiveTheTimmOrderOutput) {
  torch::manual_seed(4);
  auto taps = std::make_shared<TapSet>();
  model::PatchMerging timm(model::PatchMergingOptions(5), TapScope(taps, "t"));
  model::PatchMerging unfold(
      model::PatchMergingOptions(5).channel_order(model::MergeOrder::kUnfold), TapScope(taps, "u"));
  timm->to(at::kDouble);
  unfold->to(at::kDouble);
  auto tp = timm->named_parameters();
  {
    torch::NoGradGuard g;
    for (auto& p : timm->parameters()) p.normal_();
  }
  std::map<std::string, at::Tensor> mmdet = {
      {"norm.weight", MergeNormTimmToUnfold(tp["norm.weight"])},
      {"norm.bias", MergeNormTimmToUnfold(tp["norm.bias"])},
      {"reduction.weight", MergeReductionTimmToUnfold(tp["reduction.weight"])}};
  model::LoadStateDict(*unfold, mmdet, "mmdet order");
  const at::Tensor x = at::randn({1, 4, 4, 5}, at::kDouble);
  EXPECT_TENSOR_NEAR_REL(unfold->forward(x), timm->forward(x), psaq::testing::kFloat64ParityRel);
  // Without the permutation the outputs differ (the test can fail).
  EXPECT_GT((mmdet["reduction.weight"] - tp["reduction.weight"]).abs().max().item<double>(), 0.1);
  EXPECT_TENSOR_IDENTICAL(MergeReductionUnfoldToTimm(mmdet["reduction.weight"]),
                          tp["reduction.weight"]);
  EXPECT_TENSOR_IDENTICAL(MergeNormUnfoldToTimm(mmdet["norm.weight"]), tp["norm.weight"]);
  // The hand-checked permutation for C = 1: timm (h,w) blocks (0,0),(1,0),(0,1),(1,1) ->
  // unfold positions (0,0),(0,1),(1,0),(1,1).
  const at::Tensor v = at::tensor({10.0, 11.0, 12.0, 13.0}, at::kDouble);
  EXPECT_TENSOR_IDENTICAL(MergeNormTimmToUnfold(v),
                          at::tensor({10.0, 12.0, 11.0, 13.0}, at::kDouble));
}

TEST(SwinBackboneTest, TapsFollowTheForwardAndNameTheParameters) {
  const DetectorConfig c = testing::TinyDetectorConfig();
  Backbone b(c);
  psaq::testing::RecordingObserver rec;
  {
    model::ScopedTapObserver s(*b.taps, &rec);
    b.net->forward(at::randn({1, 3, 64, 64}));
  }
  // Every registered tap is reached once, in registration order.
  ASSERT_EQ(rec.calls.size(), b.taps->taps().size());
  for (size_t i = 0; i < rec.calls.size(); ++i) EXPECT_EQ(rec.calls[i].id, static_cast<int>(i));
  std::set<std::string> params;
  for (const auto& item : b.net->named_parameters()) params.insert("backbone." + item.key());
  int weights = 0;
  for (const auto& t : b.taps->taps()) {
    if (t.kind == TapKind::kWeight) {
      EXPECT_TRUE(params.count(t.name)) << t.name;
      ++weights;
    }
  }
  // patch conv + per block (qkv, proj, fc1, fc2) + 3 reductions.
  EXPECT_EQ(weights, 1 + 8 * 4 + 3);
  EXPECT_EQ(rec.calls.front().name, "backbone.patch_embed.projection.weight");
  EXPECT_EQ(rec.calls.back().name, "backbone.norm3.out");
  ASSERT_NE(rec.Find("backbone.stages.0.blocks.1.attn.w_msa.qkv.out"), nullptr);
  // stage 0 at 64x64: a 16x16 map padded to 21x21 -> 9 windows of 49 tokens.
  EXPECT_EQ(rec.Find("backbone.stages.0.blocks.1.attn.w_msa.qkv.out")->shape,
            (std::vector<int64_t>{9, 49, 24}));
  EXPECT_EQ(b.net->block_paths().size(), 8u);
  EXPECT_EQ(b.net->block_paths()[2], "backbone.stages.1.blocks.0");
}

}  // namespace
}  // namespace psaq::detect
