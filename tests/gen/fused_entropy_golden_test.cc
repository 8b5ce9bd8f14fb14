// The fused entropy against the golden fixtures (tests/data/golden/README.md), like the
// reference's kde_entropy_golden_test / kde_entropy_grad_golden_test: every block's entropy from
// the fixture's float64 A·V feature av_headmean64.<i> (B = 2) matches entropy64[i], and the
// entropy loss computed fused through each float64 golden model, back-propagated to input64,
// matches entropy_loss_grad_input64 (timm/PyTorch 2.11).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gen/fused_entropy.h"
#include "gen/patch_similarity_entropy.h"
#include "model/registry.h"
#include "model/safetensors.h"
#include "model/tap.h"
#include "tests/testing/tensor_near.h"
#include "tests/testing/tolerances.h"

namespace psaq::gen {
namespace {

constexpr int64_t kGoldenBatch = 2;
const std::string kAvMeanSuffix = ".av_mean";

KdeOptions Fused() {
  KdeOptions o;
  o.implementation = KdeImplementation::kFused;
  return o;
}

// Keeps (with their autograd history) the av_mean features in forward order.
class AvMeanCollector : public model::TapObserver {
 public:
  at::Tensor OnTap(int /*id*/, const model::TapInfo& info, const at::Tensor& x) override {
    const std::string& n = info.name;
    if (info.kind == model::TapKind::kFeature && n.size() > kAvMeanSuffix.size() &&
        n.compare(n.size() - kAvMeanSuffix.size(), kAvMeanSuffix.size(), kAvMeanSuffix) == 0) {
      features.push_back(x);
    }
    return x;
  }
  std::vector<at::Tensor> features;
};

class FusedEntropyGoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::string Base() const { return testing::GoldenDir() + "/" + GetParam(); }
};

TEST_P(FusedEntropyGoldenTest, EveryBlockMatchesFloat64Reference) {
  const model::SafetensorsFile io = model::ReadSafetensors(Base() + ".io.safetensors");
  const at::Tensor& ref = io.Get("entropy64");
  ASSERT_GE(ref.numel(), 1);
  std::vector<at::Tensor> fused;
  for (int64_t i = 0; i < ref.size(0); ++i) {
    const at::Tensor& av = io.Get("av_headmean64." + std::to_string(i));
    ASSERT_EQ(av.scalar_type(), at::kDouble);
    fused.push_back(FusedPatchSimilarityEntropyPerImage(av, kGoldenBatch).mean());
  }
  EXPECT_TENSOR_NEAR_REL(at::stack(fused), ref, testing::kFloat64ParityRel);
}

TEST_P(FusedEntropyGoldenTest, EntropyLossInputGradientMatchesFloat64Reference) {
  const model::SafetensorsFile io = model::ReadSafetensors(Base() + ".io.safetensors");
  model::ModelPtr net = model::LoadModel(Base() + ".weights.safetensors");
  net->to(at::kDouble);
  net->eval();
  for (at::Tensor& p : net->parameters()) p.set_requires_grad(false);
  AvMeanCollector collector;
  model::ScopedTapObserver attach(net->taps(), &collector,
                                  model::TapMask(model::TapKind::kFeature));
  at::Tensor x = io.Get("input64").clone().requires_grad_(true);
  net->forward(x);
  ASSERT_EQ(collector.features.size(), net->block_paths().size());

  const at::Tensor loss = PatchSimilarityEntropyLoss(collector.features, x.size(0), Fused());
  loss.backward();
  const at::Tensor& ref_grad = io.Get("entropy_loss_grad_input64");
  ASSERT_GT(ref_grad.abs().max().item<double>(), 0.0);
  EXPECT_TENSOR_NEAR_REL(x.grad(), ref_grad, testing::kFloat64ParityRel);
}

INSTANTIATE_TEST_SUITE_P(Golden, FusedEntropyGoldenTest,
                         ::testing::Values("vit_p4_d48", "swin_p4_w7_d16", "vit_fmnist"));

}  // namespace
}  // namespace psaq::gen
