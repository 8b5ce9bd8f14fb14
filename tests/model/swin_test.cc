// Swin model and its pieces: window partition, relative-position index and shift mask against
// hand-computed values, patch-merging order against timm's strided-slice definition, window
// clipping, taps, timm parameter names. Numerical parity with timm is in parity_test.cc.
#include "model/swin.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "model/layer_util.h"
#include "model/patch_merging.h"
#include "model/swin_block.h"
#include "model/token_permutation.h"
#include "model/window_attention.h"
#include "tests/model/tap_observers.h"
#include "tests/testing/tensor_near.h"
#include "tests/testing/tolerances.h"

namespace psaq::model {
namespace {

using at::indexing::None;
using at::indexing::Slice;
using testing::RecordingObserver;
using testing::ReplacingObserver;

constexpr TapKind kA = TapKind::kActivation;
constexpr TapKind kW = TapKind::kWeight;
constexpr TapKind kF = TapKind::kFeature;

// 32x32 images, patch 4 -> 8x8 map, window 4: stage 0 has 4 windows (block 1 shifted by 2);
// stage 1 works on 4x4 <= window, so its single block uses one 4x4 window without shift.
ModelConfig TinySwinConfig(int num_classes = 5) {
  ModelConfig config;
  config.name = "tiny_swin";
  config.arch = Arch::kSwin;
  config.swin.img_size = 32;
  config.swin.patch_size = 4;
  config.swin.in_chans = 3;
  config.swin.num_classes = num_classes;
  config.swin.embed_dim = 8;
  config.swin.depths = {2, 1};
  config.swin.num_heads = {1, 2};
  config.swin.window_size = 4;
  config.swin.mlp_ratio = 2.0;
  return config;
}

ModelPtr TinySwin(int num_classes = 5) {
  at::manual_seed(3);
  return CreateSwin(TinySwinConfig(num_classes));
}

at::Tensor TinyInput() {
  at::manual_seed(5);
  return at::randn({2, 3, 32, 32});
}

TEST(WindowPartitionTest, WindowsAreBatchMajorAndRowMajor) {
  const at::Tensor x = at::arange(16, at::kFloat).view({1, 4, 4, 1});
  const at::Tensor windows = WindowPartition(x, 2);  // [4, 4, 1]
  const at::Tensor expected =
      at::tensor({0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15}, at::kFloat)
          .view({4, 4, 1});
  EXPECT_TENSOR_IDENTICAL(windows, expected);
  EXPECT_TENSOR_IDENTICAL(WindowReverse(windows, 2, 4, 4), x);
}

// The shifted-window token permutation equals roll(-s) + WindowPartition and its inverse equals
// WindowReverse + roll(+s), values and gradients bit for bit (a Swin block uses it instead).
TEST(TokenPermutationTest, EqualsRollAndPartitionForwardAndBackward) {
  for (const int shift : {0, 1, 3}) {
    const int64_t B = 2, R = 14, C = 5;
    const int ws = 7, N = ws * ws;
    const at::Tensor order = ShiftedWindowOrder(R, R, ws, shift);
    const at::Tensor inverse = InversePermutation(order);
    EXPECT_TENSOR_IDENTICAL(std::get<0>(order.sort()), at::arange(R * R, at::kLong));
    at::manual_seed(shift);
    const at::Tensor x = at::randn({B, R, R, C}).requires_grad_(true);
    const at::Tensor g = at::randn({B * (R / ws) * (R / ws), N, C});

    const at::Tensor ref = WindowPartition(at::roll(x, {-shift, -shift}, {1, 2}), ws);
    const at::Tensor got = PermuteTokens(x.reshape({B, R * R, C}), order, inverse).view({-1, N, C});
    EXPECT_TENSOR_IDENTICAL(got, ref);
    const at::Tensor ref_grad = torch::autograd::grad({ref}, {x}, {g})[0];
    const at::Tensor got_grad = torch::autograd::grad({got}, {x}, {g})[0];
    EXPECT_TENSOR_IDENTICAL(got_grad, ref_grad);

    const at::Tensor w = g.clone().requires_grad_(true);
    const at::Tensor back_ref = at::roll(WindowReverse(w, ws, R, R), {shift, shift}, {1, 2});
    const at::Tensor back =
        PermuteTokens(w.reshape({B, R * R, C}), inverse, order).view({B, R, R, C});
    EXPECT_TENSOR_IDENTICAL(back, back_ref);
    const at::Tensor h = at::randn({B, R, R, C});
    EXPECT_TENSOR_IDENTICAL(torch::autograd::grad({back}, {w}, {h})[0],
                            torch::autograd::grad({back_ref}, {w}, {h})[0]);
  }
}

TEST(TokenPermutationTest, RejectsAWindowThatDoesNotTile) {
  EXPECT_THROW(ShiftedWindowOrder(14, 14, 5, 2), c10::Error);
  EXPECT_THROW(ShiftedWindowOrder(14, 14, 7, 7), c10::Error);
}

TEST(RelativePositionIndexTest, MatchesHandComputedTwoByTwo) {
  // index[i][j] = (y_i - y_j + 1) * 3 + (x_i - x_j + 1) for tokens (0,0), (0,1), (1,0), (1,1).
  const at::Tensor expected =
      at::tensor({4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4}, at::kLong).view({4, 4});
  EXPECT_TENSOR_IDENTICAL(RelativePositionIndex(2), expected);
  const at::Tensor big = RelativePositionIndex(7);
  EXPECT_EQ(big.min().item<int64_t>(), 0);
  EXPECT_EQ(big.max().item<int64_t>(), 13 * 13 - 1);
  EXPECT_TRUE(at::all(big.diagonal() == 6 * 13 + 6).item<bool>());
}

TEST(ShiftedWindowMaskTest, MatchesHandComputedRegions) {
  // R = 4, window 2, shift 1: region labels of the rolled map are
  //   0 0 1 2 / 0 0 1 2 / 3 3 4 5 / 6 6 7 8, so the four windows hold
  //   {0,0,0,0}, {1,2,1,2}, {3,3,6,6}, {4,5,7,8}.
  const at::Tensor mask = ShiftedWindowMask(4, 2, 1);
  ASSERT_EQ(mask.sizes(), (at::IntArrayRef{4, 4, 4}));
  const std::vector<std::vector<int>> labels = {
      {0, 0, 0, 0}, {1, 2, 1, 2}, {3, 3, 6, 6}, {4, 5, 7, 8}};
  at::Tensor expected = at::zeros({4, 4, 4});
  for (int w = 0; w < 4; ++w) {
    for (int i = 0; i < 4; ++i) {
      for (int j = 0; j < 4; ++j) {
        if (labels[w][i] != labels[w][j]) expected.index_put_({w, i, j}, -100.0);
      }
    }
  }
  EXPECT_TENSOR_IDENTICAL(mask, expected);
}

TEST(PatchMergingTest, ConcatenatesLikeTimmsStridedSlicesThenNormsThenReduces) {
  at::manual_seed(1);
  const int C = 3;
  PatchMerging merging(PatchMergingOptions(C), TapScope(std::make_shared<TapSet>(), "ds"));
  const at::Tensor x = at::randn({2, 4, 6, C});
  // timm's definition: x0 = x[:, 0::2, 0::2], x1 = x[:, 1::2, 0::2], x2 = x[:, 0::2, 1::2],
  // x3 = x[:, 1::2, 1::2], concatenated on channels.
  const at::Tensor cat = at::cat({x.index({Slice(), Slice(0, None, 2), Slice(0, None, 2)}),
                                  x.index({Slice(), Slice(1, None, 2), Slice(0, None, 2)}),
                                  x.index({Slice(), Slice(0, None, 2), Slice(1, None, 2)}),
                                  x.index({Slice(), Slice(1, None, 2), Slice(1, None, 2)})},
                                 -1);
  auto params = merging->named_parameters();
  {
    at::NoGradGuard no_grad;
    params["norm.weight"].normal_();
    params["norm.bias"].normal_();
  }
  const at::Tensor expected =
      at::linear(at::layer_norm(cat, {4 * C}, params["norm.weight"], params["norm.bias"], 1e-5),
                 params["reduction.weight"]);
  const at::Tensor y = merging->forward(x);
  EXPECT_EQ(y.sizes(), (at::IntArrayRef{2, 2, 3, 2 * C}));
  EXPECT_TENSOR_NEAR_REL(y, expected, psaq::testing::kFloat32KernelRel);
  EXPECT_FALSE(params.contains("reduction.bias"));
}

TEST(SwinBlockTest, WindowIsClippedToTheResolutionAndShiftDropped) {
  auto taps = std::make_shared<TapSet>();
  SwinBlock clipped(SwinBlockOptions(8, 2, /*resolution=*/4, /*window=*/7).shift_size(3),
                    TapScope(taps, "a"));
  EXPECT_EQ(clipped->window_size(), 4);
  EXPECT_EQ(clipped->shift_size(), 0);
  SwinBlock shifted(SwinBlockOptions(8, 2, /*resolution=*/8, /*window=*/4).shift_size(2),
                    TapScope(taps, "b"));
  EXPECT_EQ(shifted->window_size(), 4);
  EXPECT_EQ(shifted->shift_size(), 2);
  // The relative-position table follows the clipped window: (2*4-1)^2 rows.
  EXPECT_EQ(clipped->named_parameters()["attn.relative_position_bias_table"].sizes(),
            (at::IntArrayRef{49, 2}));
}

// The 18 taps of one Swin block at `p`, in forward order.
std::vector<std::pair<std::string, TapKind>> BlockTaps(const std::string& p) {
  return {{p + ".norm1.out", kA},
          {p + ".attn.qkv.weight", kW},
          {p + ".attn.qkv.out", kA},
          {p + ".attn.logits", kA},
          {p + ".attn.rel_pos_bias", kA},
          {p + ".attn.logits_bias", kA},
          {p + ".attn.softmax", kA},
          {p + ".attn.av", kA},
          {p + ".av_mean", kF},
          {p + ".attn.proj.weight", kW},
          {p + ".attn.proj.out", kA},
          {p + ".add1", kA},
          {p + ".norm2.out", kA},
          {p + ".mlp.fc1.weight", kW},
          {p + ".mlp.act", kA},
          {p + ".mlp.fc2.weight", kW},
          {p + ".mlp.fc2.out", kA},
          {p + ".add2", kA},
          {p + ".out", kF}};
}

TEST(SwinTest, TapNamesKindsAndOrderMatchTheContract) {
  std::vector<std::pair<std::string, TapKind>> expected = {{"input", kA},
                                                           {"patch_embed.proj.weight", kW},
                                                           {"patch_embed.proj.out", kA},
                                                           {"patch_embed.norm.out", kA}};
  const auto append = [&](const std::vector<std::pair<std::string, TapKind>>& more) {
    expected.insert(expected.end(), more.begin(), more.end());
  };
  append(BlockTaps("layers.0.blocks.0"));
  append(BlockTaps("layers.0.blocks.1"));
  append({{"layers.1.downsample.norm.out", kA},
          {"layers.1.downsample.reduction.weight", kW},
          {"layers.1.downsample.reduction.out", kA}});
  append(BlockTaps("layers.1.blocks.0"));
  append({{"norm.out", kA}, {"pool.out", kA}, {"head.fc.weight", kW}, {"head.out", kA}});

  ModelPtr model = TinySwin();
  const auto& taps = model->taps().taps();
  ASSERT_EQ(taps.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(taps[i].name, expected[i].first) << "tap " << i;
    EXPECT_EQ(taps[i].kind, expected[i].second) << "tap " << taps[i].name;
  }
  EXPECT_EQ(
      model->block_paths(),
      (std::vector<std::string>{"layers.0.blocks.0", "layers.0.blocks.1", "layers.1.blocks.0"}));
}

TEST(SwinTest, ForwardVisitsEveryTapOnceInRegistrationOrderWithDocumentedShapes) {
  ModelPtr model = TinySwin();
  RecordingObserver rec;
  ScopedTapObserver scoped(model->taps(), &rec);
  const at::Tensor y = model->forward(TinyInput());
  EXPECT_EQ(y.sizes(), (at::IntArrayRef{2, 5}));
  const auto& taps = model->taps().taps();
  ASSERT_EQ(rec.calls.size(), taps.size());
  for (size_t i = 0; i < taps.size(); ++i) EXPECT_EQ(rec.calls[i].id, static_cast<int>(i));

  using Shape = std::vector<int64_t>;
  const std::vector<std::pair<std::string, Shape>> shapes = {
      {"patch_embed.proj.out", {2, 8, 8, 8}},
      {"patch_embed.norm.out", {2, 8, 8, 8}},
      {"layers.0.blocks.1.attn.qkv.out", {8, 16, 24}},  // 2 images x 4 windows of 16
      {"layers.0.blocks.1.attn.logits", {8, 1, 16, 16}},
      {"layers.0.blocks.1.attn.rel_pos_bias", {1, 16, 16}},
      {"layers.0.blocks.1.attn.av", {8, 1, 16, 8}},
      {"layers.0.blocks.1.av_mean", {8, 16, 8}},
      {"layers.0.blocks.1.out", {2, 8, 8, 8}},
      {"layers.1.downsample.norm.out", {2, 4, 4, 32}},
      {"layers.1.downsample.reduction.out", {2, 4, 4, 16}},
      {"layers.1.blocks.0.attn.logits_bias", {2, 2, 16, 16}},  // one window per image
      {"layers.1.blocks.0.av_mean", {2, 16, 8}},
      {"norm.out", {2, 4, 4, 16}},
      {"pool.out", {2, 16}},
      {"head.fc.weight", {5, 16}},
  };
  for (const auto& [name, shape] : shapes) {
    const RecordingObserver::Call* call = rec.Find(name);
    ASSERT_NE(call, nullptr) << name;
    EXPECT_EQ(call->shape, shape) << name;
  }
}

TEST(SwinTest, ParametersHaveTimmNamesAndNoBuffers) {
  ModelPtr model = TinySwin();
  std::set<std::string> names;
  for (const auto& item : model->named_parameters()) names.insert(item.key());
  std::set<std::string> expected = {"patch_embed.proj.weight",
                                    "patch_embed.proj.bias",
                                    "patch_embed.norm.weight",
                                    "patch_embed.norm.bias",
                                    "layers.1.downsample.norm.weight",
                                    "layers.1.downsample.norm.bias",
                                    "layers.1.downsample.reduction.weight",
                                    "norm.weight",
                                    "norm.bias",
                                    "head.fc.weight",
                                    "head.fc.bias"};
  for (const std::string p : {"layers.0.blocks.0", "layers.0.blocks.1", "layers.1.blocks.0"}) {
    for (const char* leaf :
         {"norm1.weight", "norm1.bias", "attn.relative_position_bias_table", "attn.qkv.weight",
          "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias",
          "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"}) {
      expected.insert(p + "." + leaf);
    }
  }
  EXPECT_EQ(names, expected);
  // relative_position_index and attn_mask are non-persistent in timm: not buffers here.
  EXPECT_TRUE(model->named_buffers().is_empty());
}

TEST(SwinTest, ObserverSemantics) {
  ModelPtr model = TinySwin();
  const at::Tensor x = TinyInput();
  const at::Tensor plain = model->forward(x);
  {
    RecordingObserver identity;
    ScopedTapObserver scoped(model->taps(), &identity);
    EXPECT_TENSOR_IDENTICAL(model->forward(x), plain);
  }
  {
    ReplacingObserver zero_bias(
        {{"layers.0.blocks.1.attn.rel_pos_bias", [](const at::Tensor& t) { return t * 0; }}});
    ScopedTapObserver scoped(model->taps(), &zero_bias);
    EXPECT_GT((model->forward(x) - plain).abs().max().item<double>(), 0.0);
  }
  {
    RecordingObserver rec;
    ScopedTapObserver scoped(model->taps(), &rec, TapMask(kA) | TapMask(kW));
    model->forward(x);
    for (const auto& call : rec.calls) EXPECT_NE(call.kind, kF) << call.name;
  }
}

TEST(SwinTest, RunsInFloat64WithCachedConstantsAndInputGradient) {
  ModelPtr model = TinySwin();
  const at::Tensor x = TinyInput();
  const at::Tensor y32 = model->forward(x).detach();
  model->to(at::kDouble);
  at::Tensor x64 = x.to(at::kDouble).requires_grad_(true);
  at::Tensor y64 = model->forward(x64);
  EXPECT_EQ(y64.scalar_type(), at::kDouble);
  EXPECT_TENSOR_NEAR_REL(y32, y64.detach(), psaq::testing::kFloat32ParityRel);
  y64.sum().backward();
  ASSERT_TRUE(x64.grad().defined());
  EXPECT_GT(x64.grad().abs().max().item<double>(), 0.0);
  // Back to float32: the cached shift mask follows the dtype again.
  model->to(at::kFloat);
  EXPECT_TENSOR_IDENTICAL(model->forward(x).detach(), y32);
}

}  // namespace
}  // namespace psaq::model
