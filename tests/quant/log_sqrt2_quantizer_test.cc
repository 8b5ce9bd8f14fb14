// The log-sqrt(2) quantizer (quant/log_sqrt2_quantizer.h): values on a hand-checked case, the
// fake-quantized values against the integer codes decoded by table, and its place in the
// quantized model (repq quantizes the post-softmax attention, psaq leaves it in float).
#include "quant/log_sqrt2_quantizer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "quant/calibration.h"
#include "quant/quantized_model.h"
#include "tests/testing/tensor_near.h"
#include "tests/testing/tiny_models.h"

namespace psaq::quant {
namespace {

std::unique_ptr<LogSqrt2Quantizer> Make(int bits, double delta) {
  auto q = std::make_unique<LogSqrt2Quantizer>(bits);
  q->SetRange(0, delta);
  return q;
}

TEST(LogSqrt2QuantizerTest, ValuesOnAHandCheckedCase) {
  // 3 bits, Δ = 1: codes 0..6 are 2^(-k/2), code 7 is zero. k = round(-2 log2 x):
  //   1 -> 0; 0.75 -> 0.83 -> 1; 0.5 -> 2; 0.3 -> 3.47 -> 3; 0.2 -> 4.64 -> 5;
  //   0.12 -> 6.12 -> 6; 0.1 -> 6.64 -> 7 (zero); 2 -> -2 -> 0 (clamped to Δ); 0 -> +inf (zero).
  const auto q_owner = Make(3, 1.0);
  const LogSqrt2Quantizer& q = *q_owner;
  const at::Tensor x = at::tensor({1.0, 0.75, 0.5, 0.3, 0.2, 0.12, 0.1, 2.0, 0.0}, at::kDouble);
  const std::vector<int64_t> codes = {0, 1, 2, 3, 5, 6, 7, 0, 7};
  const std::vector<double> values = {
      1.0, std::sqrt(0.5), 0.5, std::pow(2.0, -1.5), std::pow(2.0, -2.5), 0.125, 0.0, 1.0, 0.0};
  const at::Tensor c = q.Codes(x);
  const at::Tensor v = q.FakeQuantize(x);
  for (size_t i = 0; i < codes.size(); ++i) {
    EXPECT_EQ(c[static_cast<int64_t>(i)].item<int64_t>(), codes[i])
        << "x = " << x[i].item<double>();
    EXPECT_DOUBLE_EQ(v[static_cast<int64_t>(i)].item<double>(), values[i])
        << "x = " << x[i].item<double>();
  }
  // Δ scales every level.
  EXPECT_DOUBLE_EQ(Make(3, 0.8)->FakeQuantize(at::tensor({0.4}, at::kDouble)).item<double>(), 0.4);
}

TEST(LogSqrt2QuantizerTest, FakeQuantizeIsTheIntegerCodesDecodedByTable) {
  for (int bits : {2, 3, 4, 8}) {
    for (at::ScalarType dtype : {at::kFloat, at::kDouble}) {
      const auto q_owner = Make(bits, 0.93);
      const LogSqrt2Quantizer& q = *q_owner;
      at::manual_seed(bits);
      const at::Tensor x = at::softmax(at::randn({4, 2, 9, 9}) * 3, -1).to(dtype);
      const at::Tensor codes = q.Codes(x);
      EXPECT_GE(codes.min().item<int64_t>(), 0);
      EXPECT_LE(codes.max().item<int64_t>(), (int64_t{1} << bits) - 1);
      // The integer path: b-bit codes stored as uint8, decoded by the 2^b-entry table.
      const at::Tensor stored = codes.to(at::kByte).to(at::kLong);
      EXPECT_TENSOR_IDENTICAL(q.FakeQuantize(x), q.Decode(stored, dtype));
      // And the table is the formula's levels: Δ 2^(-k/2), zero last.
      const at::Tensor table = q.LevelTable(at::kDouble);
      for (int64_t k = 0; k + 1 < table.numel(); ++k) {
        EXPECT_NEAR(table[k].item<double>(), 0.93 * std::pow(2.0, -0.5 * k),
                    1e-15 * table[0].item<double>());
      }
      EXPECT_EQ(table[table.numel() - 1].item<double>(), 0.0);
    }
  }
}

TEST(LogSqrt2QuantizerTest, StraightThroughGradientAndBadInput) {
  const auto q_owner = Make(4, 1.0);
  const LogSqrt2Quantizer& q = *q_owner;
  const at::Tensor x = at::softmax(at::randn({3, 5}), -1).requires_grad_(true);
  q.FakeQuantize(x).sum().backward();
  EXPECT_TRUE(at::equal(x.grad(), at::ones_like(x)));
  EXPECT_THROW(q.Codes(at::tensor({-0.1})), c10::Error);
  EXPECT_THROW(Make(4, 0.0)->Codes(at::tensor({0.1})), c10::Error);
  LogSqrt2Quantizer off(kBitsOff);
  const at::Tensor y = at::rand({4});
  EXPECT_TRUE(off.FakeQuantize(y).is_same(y));
}

TEST(LogSqrt2QuantizerTest, RepqQuantizesTheSoftmaxAndPsaqLeavesItInFloat) {
  for (const std::string arch : {"vit", "swin"}) {
    QuantConfig repq_config = testing::Bits(4, 4);
    repq_config.quantizer = QuantizerKind::kRepq;
    QuantizedModel psaq(testing::TinyModel(arch), testing::Bits(4, 4));
    QuantizedModel repq(testing::TinyModel(arch), repq_config);
    const auto batches = testing::Batches(testing::TinyConfig(arch), 1, 8, 7);
    Calibrate(psaq, batches, nullptr);
    Calibrate(repq, batches, nullptr);
    int softmax_taps = 0;
    for (int id : repq.activation_taps()) {
      const std::string& name = repq.tap(id).name;
      if (!IsSoftmaxTap(name)) {
        EXPECT_EQ(ActivationQuantizerName(repq.activation_quantizer(id)), "uniform") << name;
        continue;
      }
      ++softmax_taps;
      EXPECT_EQ(psaq.activation_quantizer(id).bits(), kBitsOff) << name;
      EXPECT_EQ(ActivationQuantizerName(psaq.activation_quantizer(id)), "uniform") << name;
      const ActivationQuantizer& q = repq.activation_quantizer(id);
      EXPECT_EQ(ActivationQuantizerName(q), "log_sqrt2") << name;
      EXPECT_EQ(q.bits(), 4) << name;
      EXPECT_EQ(q.range().first, 0.0) << name;
      EXPECT_GT(q.range().second, 0.0) << name;
      EXPECT_LE(q.range().second, 1.0) << name;
    }
    EXPECT_GT(softmax_taps, 0) << arch;
  }
}

}  // namespace
}  // namespace psaq::quant
