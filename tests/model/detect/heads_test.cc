// FPN, RPN head, box head, mask head and RoI level mapping on hand-checkable inputs.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "model/detect/bbox_head.h"
#include "model/detect/fpn.h"
#include "model/detect/mask_head.h"
#include "model/detect/roi_levels.h"
#include "model/detect/rpn_head.h"
#include "tests/model/tap_observers.h"
#include "tests/testing/tensor_near.h"

namespace psaq::detect {
namespace {

using model::TapScope;
using model::TapSet;

void Set(const at::Tensor& p, const at::Tensor& v) {
  torch::NoGradGuard g;
  p.copy_(v);
}

// Lateral 1x1 convs of weight 1 and 3x3 fpn convs that pass the centre through: the outputs are
// the top-down sums, the extra level their stride-2 subsample.
TEST(FpnTest, TopDownNearestSumAndMaxPoolExtraLevel) {
  auto taps = std::make_shared<TapSet>();
  Fpn fpn(std::vector<int>{1, 1}, 1, 3, TapScope(taps, "neck"));
  auto p = fpn->named_parameters();
  for (const char* l : {"lateral_convs.0.conv", "lateral_convs.1.conv"}) {
    Set(p[std::string(l) + ".weight"], at::ones({1, 1, 1, 1}));
    Set(p[std::string(l) + ".bias"], at::zeros({1}));
  }
  at::Tensor centre = at::zeros({1, 1, 3, 3});
  centre[0][0][1][1] = 1.0;
  for (const char* f : {"fpn_convs.0.conv", "fpn_convs.1.conv"}) {
    Set(p[std::string(f) + ".weight"], centre);
    Set(p[std::string(f) + ".bias"], at::zeros({1}));
  }
  const at::Tensor c0 = at::arange(16, at::kFloat).view({1, 1, 4, 4});
  const at::Tensor c1 = at::tensor({100.f, 200.f, 300.f, 400.f}).view({1, 1, 2, 2});
  const std::vector<at::Tensor> out = fpn->forward({c0, c1});
  ASSERT_EQ(out.size(), 3u);
  const at::Tensor expected0 = at::tensor({100.f, 101.f, 202.f, 203.f, 104.f, 105.f, 206.f, 207.f,
                                           308.f, 309.f, 410.f, 411.f, 312.f, 313.f, 414.f, 415.f})
                                   .view({1, 1, 4, 4});
  EXPECT_TENSOR_IDENTICAL(out[0], expected0);
  EXPECT_TENSOR_IDENTICAL(out[1], c1);
  EXPECT_TENSOR_IDENTICAL(out[2], at::tensor({100.f}).view({1, 1, 1, 1}));
  // Odd sizes: the extra level ceil-halves (max_pool2d kernel 1, stride 2), nearest resizing to
  // the finer level's size.
  const std::vector<at::Tensor> odd =
      fpn->forward({at::zeros({1, 1, 6, 6}), at::ones({1, 1, 3, 3})});
  EXPECT_EQ(odd[2].sizes().vec(), (std::vector<int64_t>{1, 1, 2, 2}));
  EXPECT_TENSOR_IDENTICAL(odd[0], at::ones({1, 1, 6, 6}));
  EXPECT_THROW(fpn->forward({c0}), c10::Error);
  EXPECT_THROW(fpn->forward({at::zeros({1, 2, 4, 4}), c1}), c10::Error);
}

TEST(FpnTest, ParameterNamesAreMmdets) {
  auto taps = std::make_shared<TapSet>();
  Fpn fpn(std::vector<int>{8, 16}, 4, 3, TapScope(taps, "neck"));
  std::vector<std::string> names;
  for (const auto& item : fpn->named_parameters()) names.push_back(item.key());
  EXPECT_EQ(names,
            (std::vector<std::string>{"lateral_convs.0.conv.weight", "lateral_convs.0.conv.bias",
                                      "lateral_convs.1.conv.weight", "lateral_convs.1.conv.bias",
                                      "fpn_convs.0.conv.weight", "fpn_convs.0.conv.bias",
                                      "fpn_convs.1.conv.weight", "fpn_convs.1.conv.bias"}));
}

// With rpn_conv's output all negative, the ReLU zeroes it and the heads give their biases.
TEST(RpnHeadTest, ReluThenSharedHeadsPerLevel) {
  auto taps = std::make_shared<TapSet>();
  RpnHead head(2, 4, 3, 2, TapScope(taps, "rpn_head"));
  auto p = head->named_parameters();
  Set(p["rpn_conv.weight"], at::zeros({4, 2, 3, 3}));
  Set(p["rpn_conv.bias"], at::full({4}, -1.0));
  Set(p["rpn_cls.bias"], at::tensor({1.f, 2.f, 3.f}));
  Set(p["rpn_reg.bias"], at::arange(12, at::kFloat));
  const RpnOutputs out = head->forward({at::randn({2, 2, 4, 6}), at::randn({2, 2, 2, 3})});
  ASSERT_EQ(out.cls.size(), 2u);
  EXPECT_EQ(out.cls[0].sizes().vec(), (std::vector<int64_t>{2, 3, 4, 6}));
  EXPECT_EQ(out.reg[1].sizes().vec(), (std::vector<int64_t>{2, 12, 2, 3}));
  EXPECT_TENSOR_IDENTICAL(
      out.cls[1], at::tensor({1.f, 2.f, 3.f}).view({1, 3, 1, 1}).expand({2, 3, 2, 3}).contiguous());
  EXPECT_TENSOR_IDENTICAL(
      out.reg[0],
      at::arange(12, at::kFloat).view({1, 12, 1, 1}).expand({2, 12, 4, 6}).contiguous());
  // A positive rpn_conv output passes the ReLU: cls = w·h + b.
  Set(p["rpn_conv.bias"], at::full({4}, 2.0));
  Set(p["rpn_cls.weight"], at::ones({3, 4, 1, 1}));
  const RpnOutputs pos = head->forward({at::zeros({1, 2, 2, 2}), at::zeros({1, 2, 1, 1})});
  EXPECT_TENSOR_IDENTICAL(pos.cls[1], at::tensor({9.f, 10.f, 11.f}).view({1, 3, 1, 1}));
  EXPECT_THROW(head->forward({at::zeros({1, 2, 2, 2})}), c10::Error);
}

// shared_fcs.0 reads the RoI feature flattened channel-major ([C, S, S]); the background is the
// last of num_classes + 1 logits; deltas are 4 per class.
TEST(BBoxHeadTest, FlattensChannelMajorAndAppliesTwoReluFcs) {
  auto taps = std::make_shared<TapSet>();
  BBoxHead head(2, 2, 3, 4, TapScope(taps, "roi_head.bbox_head"));
  auto p = head->named_parameters();
  std::vector<std::string> names;
  for (const auto& item : p) names.push_back(item.key());
  EXPECT_EQ(names,
            (std::vector<std::string>{"fc_cls.weight", "fc_cls.bias", "fc_reg.weight",
                                      "fc_reg.bias", "shared_fcs.0.weight", "shared_fcs.0.bias",
                                      "shared_fcs.1.weight", "shared_fcs.1.bias"}));
  // shared_fcs.0 row 0 picks element (c=1, y=0, x=1) = flat index 5; rows 1, 2 negative.
  at::Tensor w0 = at::zeros({3, 8});
  w0[0][5] = 1.0;
  w0[1][0] = -1.0;
  Set(p["shared_fcs.0.weight"], w0);
  Set(p["shared_fcs.0.bias"], at::zeros({3}));
  Set(p["shared_fcs.1.weight"], at::eye(3));
  Set(p["shared_fcs.1.bias"], at::tensor({0.f, 0.f, -5.f}));
  Set(p["fc_cls.weight"], at::ones({5, 3}));
  Set(p["fc_cls.bias"], at::arange(5, at::kFloat));
  Set(p["fc_reg.weight"], at::ones({16, 3}));
  Set(p["fc_reg.bias"], at::zeros({16}));
  const at::Tensor x = at::arange(16, at::kFloat).view({2, 2, 2, 2}) + 1;  // all positive
  const auto [cls, reg] = head->forward(x);
  EXPECT_EQ(cls.sizes().vec(), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(reg.sizes().vec(), (std::vector<int64_t>{2, 16}));
  // RoI 0: h = relu([6, -1, 0]) = [6, 0, 0] -> relu(h + [0, 0, -5]) = [6, 0, 0]; cls = 6 + k.
  EXPECT_TENSOR_IDENTICAL(cls[0], at::tensor({6.f, 7.f, 8.f, 9.f, 10.f}));
  // RoI 1: element 5 of the second RoI = 8 + 5 + 1 = 14.
  EXPECT_TENSOR_IDENTICAL(reg[1], at::full({16}, 14.f));
  const auto [ecls, ereg] = head->forward(at::zeros({0, 2, 2, 2}));
  EXPECT_EQ(ecls.sizes().vec(), (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(ereg.sizes().vec(), (std::vector<int64_t>{0, 16}));
  EXPECT_THROW(head->forward(at::zeros({1, 2, 3, 3})), c10::Error);
}

// Convs 3x3 + ReLU, a 2x2 stride-2 transposed conv + ReLU, 1x1 logits: with identity-like
// weights each input pixel becomes a 2x2 block of the output.
TEST(MaskHeadTest, ConvsDeconvAndLogits) {
  auto taps = std::make_shared<TapSet>();
  MaskHead head(1, 2, 1, 2, TapScope(taps, "roi_head.mask_head"));
  auto p = head->named_parameters();
  std::vector<std::string> names;
  for (const auto& item : p) names.push_back(item.key());
  EXPECT_EQ(names,
            (std::vector<std::string>{"convs.0.conv.weight", "convs.0.conv.bias",
                                      "convs.1.conv.weight", "convs.1.conv.bias", "upsample.weight",
                                      "upsample.bias", "conv_logits.weight", "conv_logits.bias"}));
  at::Tensor centre = at::zeros({1, 1, 3, 3});
  centre[0][0][1][1] = 1.0;
  for (const char* c : {"convs.0.conv", "convs.1.conv"}) {
    Set(p[std::string(c) + ".weight"], centre);
    Set(p[std::string(c) + ".bias"], at::zeros({1}));
  }
  Set(p["upsample.weight"], at::tensor({1.f, 2.f, 3.f, 4.f}).view({1, 1, 2, 2}));
  Set(p["upsample.bias"], at::zeros({1}));
  Set(p["conv_logits.weight"], at::tensor({1.f, -1.f}).view({2, 1, 1, 1}));
  Set(p["conv_logits.bias"], at::tensor({0.f, 0.5f}));
  const at::Tensor x = at::tensor({1.f, -2.f, 3.f, 4.f}).view({1, 1, 2, 2});
  const at::Tensor y = head->forward(x);
  ASSERT_EQ(y.sizes().vec(), (std::vector<int64_t>{1, 2, 4, 4}));
  // relu(x) = [[1, 0], [3, 4]]; out[2y+i][2x+j] = relu(x)[y][x] · w[i][j].
  const at::Tensor up = at::tensor({1.f, 2.f, 0.f, 0.f, 3.f, 4.f, 0.f, 0.f, 3.f, 6.f, 4.f, 8.f, 9.f,
                                    12.f, 12.f, 16.f})
                            .view({4, 4});
  EXPECT_TENSOR_IDENTICAL(y[0][0], up);
  EXPECT_TENSOR_IDENTICAL(y[0][1], 0.5 - up);
  EXPECT_EQ(head->forward(at::zeros({0, 1, 2, 2})).sizes().vec(),
            (std::vector<int64_t>{0, 2, 4, 4}));
}

at::Tensor Rois(const std::vector<std::pair<double, double>>& sizes) {
  std::vector<at::Tensor> rows;
  for (auto [w, h] : sizes) rows.push_back(at::tensor({0.0, 10.0, 20.0, 10.0 + w, 20.0 + h}));
  return at::stack(rows).to(at::kFloat);
}

// floor(log2(sqrt(area) / 56 + 1e-6)) clamped to [0, 3].
TEST(RoiLevelsTest, MapsScaleToLevelsAsMmdet) {
  const at::Tensor levels = MapRoiLevels(Rois({{0, 0},
                                               {56, 56},
                                               {111, 111},
                                               {112, 112},
                                               {223, 223},
                                               {224, 224},
                                               {447, 447},
                                               {448, 448},
                                               {1000, 1000},
                                               {56, 224},
                                               {8, 2}}),
                                         4, 56);
  EXPECT_EQ(levels.scalar_type(), at::kLong);
  EXPECT_TENSOR_IDENTICAL(levels, at::tensor({0, 0, 0, 1, 1, 2, 2, 3, 3, 1, 0}, at::kLong));
  // Fewer levels clamp lower; a larger finest scale moves RoIs down.
  EXPECT_TENSOR_IDENTICAL(MapRoiLevels(Rois({{1000, 1000}}), 2, 56), at::tensor({1}, at::kLong));
  EXPECT_TENSOR_IDENTICAL(MapRoiLevels(Rois({{224, 224}}), 4, 112), at::tensor({1}, at::kLong));
  EXPECT_THROW(MapRoiLevels(at::zeros({2, 4}), 4), c10::Error);
  EXPECT_THROW(MapRoiLevels(Rois({{1, 1}}), 0), c10::Error);
}

}  // namespace
}  // namespace psaq::detect
