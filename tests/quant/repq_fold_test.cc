// RepQ's scale reparameterisation (quant/repq_fold.h) and its per-channel observer
// (quant/channel_range_observer.h): the plan on a hand-checked case, the codes it preserves,
// the float function it preserves, and its export/reload.
#include "quant/repq_fold.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "model/safetensors.h"
#include "quant/calibration.h"
#include "quant/channel_range_observer.h"
#include "quant/export.h"
#include "quant/inspect.h"
#include "quant/quantized_model.h"
#include "tests/testing/tensor_near.h"
#include "tests/testing/tiny_models.h"

namespace psaq::quant {
namespace {

// The folded float model against the unfolded one in float64: only rounding separates them.
constexpr double kFoldFloat64Rel = 1e-6;

QuantConfig Repq(int w_bits, int a_bits) {
  QuantConfig config = testing::Bits(w_bits, a_bits);
  config.quantizer = QuantizerKind::kRepq;
  return config;
}

// A tiny model whose LayerNorms have strongly different channel scales and offsets, as trained
// ViTs do (timm initialises them to 1 and 0, which leaves nothing to fold).
model::ModelPtr VariedModel(const std::string& arch) {
  model::ModelPtr m = testing::TinyModel(arch);
  at::NoGradGuard no_grad;
  at::manual_seed(5);
  for (auto& p : m->named_parameters()) {
    const std::string& name = p.key();
    if (name.find("norm") == std::string::npos) continue;
    if (name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0) {
      p.value().copy_(at::exp(at::randn_like(p.value()) * 1.5));
    } else {
      p.value().copy_(at::randn_like(p.value()) * 2.0);
    }
  }
  return m;
}

// RepQ-ViT quantizes the inputs of Linear, Conv and matmul only (quant/tap_quantizers.h
// IsRepqActivationPoint): named points of each kind on both architectures, every activation tap
// at the activation bits exactly when it is one, weights all quantized, overrides still applied.
TEST(RepqPointsTest, OnlyTheInputsOfLinearsConvsAndMatmulsAreQuantized) {
  const std::map<std::string, std::vector<std::string>> quantized = {
      {"vit", {"input", "blocks.0.norm1.out", "blocks.0.attn.qkv.out", "blocks.0.attn.softmax",
               "blocks.0.attn.av", "blocks.0.norm2.out", "blocks.0.mlp.act", "pool.out"}},
      {"swin", {"input", "layers.0.blocks.0.norm1.out", "layers.0.blocks.0.attn.qkv.out",
                "layers.0.blocks.0.attn.softmax", "layers.0.blocks.0.attn.av",
                "layers.0.blocks.0.mlp.act", "layers.1.downsample.norm.out", "pool.out"}}};
  const std::map<std::string, std::vector<std::string>> in_float = {
      {"vit", {"embed.out", "blocks.0.attn.logits", "blocks.0.attn.proj.out", "blocks.0.add1",
               "blocks.0.mlp.fc2.out", "blocks.0.add2", "head.out"}},
      {"swin", {"layers.0.blocks.0.attn.logits", "layers.0.blocks.0.attn.proj.out",
                "layers.0.blocks.0.add1", "layers.0.blocks.0.add2", "norm.out",
                "layers.1.downsample.reduction.out", "head.out"}}};
  for (const std::string arch : {"vit", "swin"}) {
    QuantConfig config = Repq(4, 4);
    config.bits_overrides["head.out"] = 8;
    QuantizedModel m(testing::TinyModel(arch), config);
    int on = 0;
    for (int id : m.activation_taps()) {
      const std::string& name = m.tap(id).name;
      const int expected = name == "head.out" ? 8 : IsRepqActivationPoint(name) ? 4 : kBitsOff;
      EXPECT_EQ(m.activation_quantizer(id).bits(), expected) << arch << " " << name;
      on += IsRepqActivationPoint(name) ? 1 : 0;
    }
    EXPECT_GT(on, 0) << arch;
    for (const std::string& name : quantized.at(arch)) {
      ASSERT_GE(m.TapId(name), 0) << name;
      EXPECT_TRUE(IsRepqActivationPoint(name)) << arch << " " << name;
    }
    for (const std::string& name : in_float.at(arch)) {
      ASSERT_GE(m.TapId(name), 0) << name;
      EXPECT_FALSE(IsRepqActivationPoint(name)) << arch << " " << name;
    }
    for (int id : m.weight_taps()) EXPECT_EQ(m.weight_quantizer(id).bits(), 4) << m.tap(id).name;
  }
  EXPECT_FALSE(IsRepqActivationPoint("norm1.out"));  // a suffix needs its dot
  EXPECT_FALSE(IsRepqActivationPoint("blocks.0.attn.avx"));
}

TEST(RepqFoldTest, PlanOnAHandCheckedCase) {
  // 2 bits (codes 0..3). Channel 0 in [-1, 2]: s = 1, z = 1. Channel 1 in [0, 6]: s = 2, z = 0.
  // Target s = 1.5, z = round-half-even(0.5) = 0; r = [2/3, 4/3]; shift = [(1 - 0) * 1.5, 0].
  const ChannelFold f =
      PlanChannelFold(at::tensor({-1.0, 0.0}, at::kDouble), at::tensor({2.0, 6.0}, at::kDouble), 2);
  EXPECT_DOUBLE_EQ(f.scale, 1.5);
  EXPECT_EQ(f.zero_point, 0);
  EXPECT_DOUBLE_EQ(f.ratio[0].item<double>(), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(f.ratio[1].item<double>(), 4.0 / 3.0);
  EXPECT_DOUBLE_EQ(f.shift[0].item<double>(), 1.5);
  EXPECT_DOUBLE_EQ(f.shift[1].item<double>(), 0.0);
  EXPECT_DOUBLE_EQ(f.range_min, 0.0);
  EXPECT_DOUBLE_EQ(f.range_max, 4.5);
}

TEST(RepqFoldTest, PerTensorCodesOfTheFoldedChannelsAreThePerChannelCodes) {
  at::manual_seed(3);
  const int bits = 4;
  const double qmax = 15;
  const at::Tensor lo =
      -at::rand({6}, at::kDouble) * at::tensor({1.0, 10.0, 0.1, 3.0, 0.5, 20.0}, at::kDouble);
  const at::Tensor hi =
      at::rand({6}, at::kDouble) * at::tensor({5.0, 1.0, 0.2, 3.0, 8.0, 2.0}, at::kDouble);
  const ChannelFold f = PlanChannelFold(lo, hi, bits);
  const at::Tensor x = lo + (hi - lo) * at::rand({1000, 6}, at::kDouble);  // [N, C]
  const at::Tensor s_c = f.ratio * f.scale;
  const at::Tensor z_c = at::round(-lo / s_c);
  const at::Tensor per_channel = at::clamp(at::round(x / s_c) + z_c, 0, qmax);
  const at::Tensor folded = x / f.ratio + f.shift;
  const at::Tensor per_tensor =
      at::clamp(at::round(folded / f.scale) + static_cast<double>(f.zero_point), 0, qmax);
  // Equal codes except where float rounding lands x exactly on a .5 tie (none at this seed).
  EXPECT_TRUE(at::equal(per_channel, per_tensor));
  EXPECT_EQ(per_channel.min().item<double>(), 0);
  EXPECT_EQ(per_channel.max().item<double>(), qmax);
}

TEST(RepqFoldTest, LayerNormPriorOnAHandCheckedCase) {
  // γ = [1, -2, 0], β = [0, 1, 5]. Normalised reach: channel 0 max(|-3 - 0|, |2 - 0|) / 1 = 3,
  // channel 1 max(|0.5 - 1|, |2 - 1|) / 2 = 0.5; channel 2 (γ = 0) is constant and ignored. So
  // k = 3: channel 1 becomes [1 - 6, 1 + 6], channel 0 [-3, 3], channel 2 stays [5, 5].
  const at::Tensor lo = at::tensor({-3.0, 0.5, 5.0}, at::kDouble);
  const at::Tensor hi = at::tensor({2.0, 2.0, 5.0}, at::kDouble);
  const auto [wlo, whi] = WidenToLayerNormPrior(lo, hi, at::tensor({1.0f, -2.0f, 0.0f}),
                                                at::tensor({0.0f, 1.0f, 5.0f}));
  EXPECT_TENSOR_IDENTICAL(wlo, at::tensor({-3.0, -5.0, 5.0}, at::kDouble));
  EXPECT_TENSOR_IDENTICAL(whi, at::tensor({3.0, 7.0, 5.0}, at::kDouble));
  // Never narrower than observed: a channel already beyond the prior keeps its range.
  const auto [alo, ahi] = WidenToLayerNormPrior(at::tensor({-1.0, -9.0}, at::kDouble),
                                                at::tensor({1.0, 9.0}, at::kDouble),
                                                at::tensor({1.0, 10.0}), at::tensor({0.0, 0.0}));
  EXPECT_TENSOR_IDENTICAL(alo, at::tensor({-1.0, -10.0}, at::kDouble));
  EXPECT_TENSOR_IDENTICAL(ahi, at::tensor({1.0, 10.0}, at::kDouble));
  EXPECT_THROW(WidenToLayerNormPrior(lo, hi, at::ones({2}), at::zeros({3})), c10::Error);
  EXPECT_THROW(WidenToLayerNormPrior(hi, lo, at::ones({3}), at::zeros({3})), c10::Error);
}

TEST(RepqFoldTest, RefusesBadChannelRanges) {
  EXPECT_THROW(PlanChannelFold(at::tensor({1.0}, at::kDouble), at::tensor({0.0}, at::kDouble), 4),
               c10::Error);
  EXPECT_THROW(
      PlanChannelFold(at::tensor({0.0}, at::kDouble), at::tensor({std::nan("")}, at::kDouble), 4),
      c10::Error);
  EXPECT_THROW(PlanChannelFold(at::zeros({2}, at::kDouble), at::ones({3}, at::kDouble), 4),
               c10::Error);
}

TEST(RepqFoldTest, FindsTheQkvAndFc1InputsButNotABiaslessReduction) {
  const auto vit = FindFoldSites(*testing::TinyModel("vit"));
  ASSERT_EQ(vit.size(), 2u * static_cast<size_t>(testing::TinyViTConfig().vit.depth));
  EXPECT_EQ(vit[0].tap, "blocks.0.norm1.out");
  EXPECT_EQ(vit[0].norm, "blocks.0.norm1");
  EXPECT_EQ(vit[0].linear, "blocks.0.attn.qkv");
  EXPECT_EQ(vit[1].linear, "blocks.0.mlp.fc1");
  model::ModelPtr swin = testing::TinyModel("swin");
  const auto sites = FindFoldSites(*swin);
  int blocks = 0;
  for (const model::TapInfo& t : swin->taps().taps()) {
    if (t.name.find("norm1.out") != std::string::npos) ++blocks;
    EXPECT_EQ(t.name.find("downsample.norm.out") != std::string::npos &&
                  std::any_of(sites.begin(), sites.end(),
                              [&](const FoldSite& s) { return s.tap == t.name; }),
              false);
  }
  EXPECT_GT(blocks, 0);
  EXPECT_EQ(sites.size(), 2u * static_cast<size_t>(blocks));
}

class RepqModelTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RepqModelTest, FoldedFloatModelIsTheUnfoldedOneInFloat64) {
  model::ModelPtr m = VariedModel(GetParam());
  m->to(at::kDouble);
  const model::ModelConfig config = testing::TinyConfig(GetParam());
  std::vector<at::Tensor> batches = testing::Batches(config, 2, 8, 101);
  for (at::Tensor& b : batches) b = b.to(at::kDouble);
  const at::Tensor x = testing::Batches(config, 1, 4, 202)[0].to(at::kDouble);
  at::NoGradGuard no_grad;
  const at::Tensor before = m->forward(x);
  const std::string probe = FindFoldSites(*m)[0].norm + ".weight";
  const at::Tensor probe_before = m->named_parameters()[probe].clone();

  QuantizedModel q(m, Repq(4, 4));
  Calibrate(q, batches, nullptr);
  // The fold changed the LayerNorm (so this compares two different parameterisations) ...
  EXPECT_GT((m->named_parameters()[probe] - probe_before).abs().max().item<double>(), 1e-3);
  q.SetMode(QuantizedModel::Mode::kFloat);
  // ... but not the function.
  EXPECT_TENSOR_NEAR_REL(q.Forward(x), before, kFoldFloat64Rel);
  // Each folded point's channels now span the one target grid: observed again, every channel's
  // range lies inside the per-tensor range widened by half a step (each channel's zero point
  // was rounded, so its ends may sit up to half a step outside; they round onto the end codes).
  for (const FoldSite& site : FindFoldSites(*m)) {
    const auto [lo, hi] = q.activation_quantizer(q.TapId(site.tap)).range();
    const auto& obs = static_cast<const ChannelMinMaxObserver&>(q.observer(q.TapId(site.tap)));
    q.ResetObservers();
    q.SetMode(QuantizedModel::Mode::kCalibrate);
    for (const at::Tensor& b : batches) q.Forward(b);
    q.SetMode(QuantizedModel::Mode::kFloat);
    const double slack = (0.5 + 1e-9) * (hi - lo) / 15;  // 4 bits: 15 steps
    EXPECT_GE(obs.channel_min().min().item<double>(), lo - slack) << site.tap;
    EXPECT_LE(obs.channel_max().max().item<double>(), hi + slack) << site.tap;
  }
}

TEST_P(RepqModelTest, LayerNormPriorFoldsExactlyAndOnlyWidens) {
  const model::ModelConfig config = testing::TinyConfig(GetParam());
  std::vector<at::Tensor> batches = testing::Batches(config, 2, 8, 101);
  for (at::Tensor& b : batches) b = b.to(at::kDouble);
  const at::Tensor x = testing::Batches(config, 1, 4, 202)[0].to(at::kDouble);
  model::ModelPtr plain_model = VariedModel(GetParam());
  model::ModelPtr prior_model = VariedModel(GetParam());
  plain_model->to(at::kDouble);
  prior_model->to(at::kDouble);
  at::NoGradGuard no_grad;
  const at::Tensor before = prior_model->forward(x);
  QuantConfig with_prior = Repq(4, 4);
  with_prior.fold_prior = FoldPrior::kLayerNorm;
  QuantizedModel plain(plain_model, Repq(4, 4));
  QuantizedModel prior(prior_model, with_prior);
  Calibrate(plain, batches, nullptr);
  Calibrate(prior, batches, nullptr);
  prior.SetMode(QuantizedModel::Mode::kFloat);
  EXPECT_TENSOR_NEAR_REL(prior.Forward(x), before, kFoldFloat64Rel);
  // The same observations; the prior's target grid is at least as wide at every site, and wider
  // at some (the varied LayerNorms leave channels short of the widest reach).
  int wider = 0;
  for (const FoldSite& site : FindFoldSites(*prior_model)) {
    const auto [lo, hi] = prior.activation_quantizer(prior.TapId(site.tap)).range();
    const auto [plo, phi] = plain.activation_quantizer(plain.TapId(site.tap)).range();
    EXPECT_GE(hi - lo, (phi - plo) * (1 - 1e-9)) << site.tap;
    wider += (hi - lo) > (phi - plo) * 1.01;
  }
  EXPECT_GT(wider, 0);
  EXPECT_EQ(DescribeQuantConfig(with_prior), "W4A4, repq, layernorm prior");
  QuantConfig psaq_prior = testing::Bits(4, 4);
  psaq_prior.fold_prior = FoldPrior::kLayerNorm;
  EXPECT_THROW(QuantizedModel(testing::TinyModel(GetParam()), psaq_prior), c10::Error);
  EXPECT_EQ(ParseFoldPrior(FoldPriorName(FoldPrior::kLayerNorm)), FoldPrior::kLayerNorm);
  EXPECT_THROW(ParseFoldPrior("gamma"), std::invalid_argument);
}

TEST_P(RepqModelTest, FoldedPointsLoseLessThanPerTensorOnVariedLayerNorms) {
  // Only the post-LayerNorm points are quantized (4 bits), so the output error is theirs alone.
  const model::ModelConfig config = testing::TinyConfig(GetParam());
  const auto batches = testing::Batches(config, 2, 8, 101);
  const at::Tensor x = testing::Batches(config, 1, 8, 202)[0];
  QuantConfig only_norms = testing::Bits(kBitsOff, kBitsOff);
  for (const FoldSite& site : FindFoldSites(*VariedModel(GetParam()))) {
    only_norms.bits_overrides[site.tap] = 4;
  }
  QuantConfig repq_norms = only_norms;
  repq_norms.quantizer = QuantizerKind::kRepq;
  at::NoGradGuard no_grad;
  const at::Tensor reference = VariedModel(GetParam())->forward(x);
  QuantizedModel psaq(VariedModel(GetParam()), only_norms);
  QuantizedModel repq(VariedModel(GetParam()), repq_norms);
  Calibrate(psaq, batches, nullptr);
  Calibrate(repq, batches, nullptr);
  const double err_psaq = (psaq.Forward(x) - reference).pow(2).mean().item<double>();
  const double err_repq = (repq.Forward(x) - reference).pow(2).mean().item<double>();
  RecordProperty("output_mse_psaq", std::to_string(err_psaq));
  RecordProperty("output_mse_repq", std::to_string(err_repq));
  EXPECT_LT(err_repq, 0.5 * err_psaq) << "psaq " << err_psaq << " repq " << err_repq;
}

TEST_P(RepqModelTest, ExportReloadIsBitIdentical) {
  // With every observer (min/max, RepQ's percentile search, repq's CLI default, and mse).
  for (ObserverKind observer :
       {ObserverKind::kMinMax, ObserverKind::kPercentile, ObserverKind::kMse}) {
    SCOPED_TRACE(ObserverKindName(observer));
    QuantConfig config = Repq(4, 4);
    config.act_observer = observer;
    QuantizedModel q(VariedModel(GetParam()), config);
    Calibrate(q, testing::Batches(testing::TinyConfig(GetParam()), 2, 8, 303), nullptr);
    const std::string path = ::testing::TempDir() + "/repq_" + GetParam() + "_" +
                             ObserverKindName(observer) + "_" + std::to_string(::getpid()) +
                             ".safetensors";
    ExportQuantizedModel(q, path);
    ImportedModel imported = ImportQuantizedModel(path);
    EXPECT_EQ(imported.model->config().quantizer, QuantizerKind::kRepq);
    EXPECT_EQ(imported.metadata.at("quantizer"), "repq");
    EXPECT_EQ(imported.model->config().act_observer, observer);
    EXPECT_EQ(imported.metadata.at("act_observer"), ObserverKindName(observer));
    const at::Tensor x = testing::Batches(testing::TinyConfig(GetParam()), 1, 4, 404)[0];
    at::NoGradGuard no_grad;
    EXPECT_TENSOR_IDENTICAL(imported.model->Forward(x), q.Forward(x));
    // psaq inspect names the quantizer and each softmax point's log-sqrt(2) grid.
    const std::string text = InspectFile(path);
    EXPECT_NE(text.find("activation ranges " + ObserverKindName(observer) + ", quantizer repq)"),
              std::string::npos)
        << text;
    size_t log_rows = 0;
    for (size_t at = text.find("log_sqrt2"); at != std::string::npos;
         at = text.find("log_sqrt2", at + 1)) {
      const size_t line = text.rfind('\n', at) + 1;
      EXPECT_NE(text.substr(line, at - line).find(".attn.softmax"), std::string::npos)
          << text.substr(line, at - line + 9);
      ++log_rows;
    }
    EXPECT_GT(log_rows, 0u) << text;
    std::remove(path.c_str());
    std::remove(ManifestPath(path).c_str());
  }
}

TEST(RepqExportTest, PsaqFilesWithoutSoftmaxPointsReadAsWritten) {
  // A psaq export from before the post-softmax taps existed lists no softmax point.
  QuantizedModel q(testing::TinyModel("vit"), testing::Bits(4, 8));
  Calibrate(q, testing::Batches(testing::TinyConfig("vit"), 2, 8, 303), nullptr);
  const std::string path =
      ::testing::TempDir() + "/repq_old_" + std::to_string(::getpid()) + ".safetensors";
  ExportQuantizedModel(q, path);
  model::SafetensorsFile file = model::ReadSafetensors(path);
  nlohmann::json points = nlohmann::json::parse(file.metadata.at("quant_points"));
  nlohmann::json old_points = nlohmann::json::array();
  for (const auto& p : points) {
    if (!IsSoftmaxTap(p.at("name").get<std::string>())) old_points.push_back(p);
  }
  ASSERT_LT(old_points.size(), points.size());
  std::map<std::string, std::string> metadata = file.metadata;
  metadata["quant_points"] = old_points.dump();
  metadata.erase("quantizer");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& [name, t] : file.tensors) {
    if (name.find(".softmax.") == std::string::npos) tensors.emplace_back(name, t);
  }
  model::WriteSafetensors(path, tensors, metadata);
  ImportedModel imported = ImportQuantizedModel(path);
  EXPECT_EQ(imported.model->config().quantizer, QuantizerKind::kPsaq);
  EXPECT_TRUE(imported.model->config().bits_overrides.empty());
  const at::Tensor x = testing::Batches(testing::TinyConfig("vit"), 1, 4, 404)[0];
  at::NoGradGuard no_grad;
  EXPECT_TENSOR_IDENTICAL(imported.model->Forward(x), q.Forward(x));

  // A repq file whose softmax point claims another quantizer is refused, naming the point.
  QuantizedModel r(testing::TinyModel("vit"), Repq(4, 4));
  Calibrate(r, testing::Batches(testing::TinyConfig("vit"), 2, 8, 303), nullptr);
  ExportQuantizedModel(r, path);
  file = model::ReadSafetensors(path);
  points = nlohmann::json::parse(file.metadata.at("quant_points"));
  for (auto& p : points) p.erase("quantizer");
  metadata = file.metadata;
  metadata["quant_points"] = points.dump();
  model::WriteSafetensors(path, file.tensors, metadata);
  try {
    ImportQuantizedModel(path);
    ADD_FAILURE() << "a repq export with uniform softmax points was imported";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("blocks.0.attn.softmax' has quantizer 'uniform'"),
              std::string::npos)
        << e.what();
  }
  std::remove(path.c_str());
  std::remove(ManifestPath(path).c_str());
}

INSTANTIATE_TEST_SUITE_P(Archs, RepqModelTest, ::testing::Values("vit", "swin"));

TEST(ChannelMinMaxObserverTest, TracksEachChannelAndMergesLikeOneObserver) {
  ChannelMinMaxObserver a(2), b(2), both(2);
  const at::Tensor x = at::tensor({1.0, -2.0, 3.0, 5.0}).reshape({2, 2});
  const at::Tensor y = at::tensor({-4.0, 0.5}).reshape({1, 1, 2});
  a.Observe(x);
  b.Observe(y);
  both.Observe(x);
  both.Observe(y);
  EXPECT_FALSE(ChannelMinMaxObserver(2).initialized());
  a.Merge(b);
  EXPECT_TRUE(at::equal(a.channel_min(), at::tensor({-4.0, -2.0}, at::kDouble)));
  EXPECT_TRUE(at::equal(a.channel_max(), at::tensor({3.0, 5.0}, at::kDouble)));
  EXPECT_TRUE(at::equal(a.state(), both.state()));
  EXPECT_EQ(a.Range(), std::make_pair(-4.0, 5.0));
  EXPECT_THROW(a.Observe(at::zeros({2, 3})), c10::Error);
  EXPECT_THROW(a.Observe(at::full({1, 2}, std::nan(""))), c10::Error);
}

}  // namespace
}  // namespace psaq::quant
