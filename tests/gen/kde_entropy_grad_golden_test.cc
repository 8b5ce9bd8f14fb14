// The entropy loss through the whole model against the golden fixtures: with each golden model
// converted to float64 and an observer collecting every block's "<block>.av_mean" feature tap,
// -sum over blocks of the V1 entropy, back-propagated to input64, matches
// entropy_loss_grad_input64 (timm/PyTorch 2.11). This checks the feature taps, the similarity
// and the KDE entropy backward together.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "gen/patch_similarity_entropy.h"
#include "model/registry.h"
#include "model/safetensors.h"
#include "model/tap.h"
#include "tests/testing/tensor_near.h"
#include "tests/testing/tolerances.h"

namespace psaq::gen {
namespace {

const std::string kAvMeanSuffix = ".av_mean";

std::string Scientific(double v) {
  std::ostringstream os;
  os << std::scientific << v;
  return os.str();
}

// Keeps (with their autograd history) the av_mean features in forward order.
class AvMeanCollector : public model::TapObserver {
 public:
  at::Tensor OnTap(int /*id*/, const model::TapInfo& info, const at::Tensor& x) override {
    const std::string& n = info.name;
    if (info.kind == model::TapKind::kFeature && n.size() > kAvMeanSuffix.size() &&
        n.compare(n.size() - kAvMeanSuffix.size(), kAvMeanSuffix.size(), kAvMeanSuffix) == 0) {
      names.push_back(n);
      features.push_back(x);
    }
    return x;
  }
  std::vector<std::string> names;
  std::vector<at::Tensor> features;
};

class KdeEntropyGradGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(KdeEntropyGradGoldenTest, EntropyLossInputGradientMatchesFloat64Reference) {
  const std::string base = testing::GoldenDir() + "/" + GetParam();
  const model::SafetensorsFile io = model::ReadSafetensors(base + ".io.safetensors");
  model::ModelPtr net = model::LoadModel(base + ".weights.safetensors");
  net->to(at::kDouble);
  net->eval();
  for (at::Tensor& p : net->parameters()) p.set_requires_grad(false);

  AvMeanCollector collector;
  model::ScopedTapObserver attach(net->taps(), &collector,
                                  model::TapMask(model::TapKind::kFeature));
  at::Tensor x = io.Get("input64").clone().requires_grad_(true);
  net->forward(x);
  ASSERT_EQ(collector.features.size(), net->block_paths().size());
  for (size_t i = 0; i < collector.features.size(); ++i) {
    EXPECT_EQ(collector.names[i], net->block_paths()[i] + kAvMeanSuffix);
  }
  const int64_t batch = x.size(0);

  // The features and their entropies agree with the fixture before the backward pass.
  const at::Tensor& ref_entropy = io.Get("entropy64");
  ASSERT_EQ(ref_entropy.size(0), static_cast<int64_t>(collector.features.size()));
  std::vector<at::Tensor> entropies;
  for (const at::Tensor& f : collector.features) {
    entropies.push_back(PatchSimilarityEntropy(f.detach(), batch));
  }
  EXPECT_TENSOR_NEAR_REL(at::stack(entropies), ref_entropy, testing::kFloat64ParityRel);

  const at::Tensor loss = PatchSimilarityEntropyLoss(collector.features, batch);
  loss.backward();
  const at::Tensor& ref_grad = io.Get("entropy_loss_grad_input64");
  ASSERT_GT(ref_grad.abs().max().item<double>(), 0.0);
  EXPECT_TENSOR_NEAR_REL(x.grad(), ref_grad, testing::kFloat64ParityRel);
  RecordProperty("grad_max_err_over_max_ref",
                 Scientific(testing::CompareTensors(x.grad(), ref_grad).ratio));
}

INSTANTIATE_TEST_SUITE_P(Golden, KdeEntropyGradGoldenTest,
                         ::testing::Values("vit_p4_d48", "swin_p4_w7_d16", "vit_fmnist"));

}  // namespace
}  // namespace psaq::gen
