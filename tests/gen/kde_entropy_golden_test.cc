// The reference entropy against the golden fixtures (tests/data/golden/README.md): for every
// block of every golden model, PSAQ-V1's differential entropy of the patch similarities computed
// from the fixture's float64 A·V feature av_headmean64.<i> (B = 2 images) matches entropy64[i],
// which timm/PyTorch 2.11 produced.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "gen/patch_similarity_entropy.h"
#include "model/safetensors.h"
#include "tests/testing/tensor_near.h"
#include "tests/testing/tolerances.h"

namespace psaq::gen {
namespace {

constexpr int64_t kGoldenBatch = 2;

std::string Scientific(double v) {
  std::ostringstream os;
  os << std::scientific << v;
  return os.str();
}

class KdeEntropyGoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    io_ = model::ReadSafetensors(testing::GoldenDir() + "/" + GetParam() + ".io.safetensors");
  }
  // Entropies of every block [blocks] with `options`.
  at::Tensor BlockEntropies(const KdeOptions& options) const {
    const at::Tensor& ref = io_.Get("entropy64");
    std::vector<at::Tensor> out;
    for (int64_t i = 0; i < ref.size(0); ++i) {
      const at::Tensor& av = io_.Get("av_headmean64." + std::to_string(i));
      EXPECT_EQ(av.scalar_type(), at::kDouble);
      EXPECT_EQ(av.size(0) % kGoldenBatch, 0) << "block " << i << " " << av.sizes();
      out.push_back(PatchSimilarityEntropy(av, kGoldenBatch, options));
    }
    return at::stack(out);
  }
  model::SafetensorsFile io_;
};

TEST_P(KdeEntropyGoldenTest, EveryBlockMatchesFloat64Reference) {
  const at::Tensor& ref = io_.Get("entropy64");
  ASSERT_GE(ref.numel(), 1);
  const at::Tensor mine = BlockEntropies(KdeOptions());
  EXPECT_TENSOR_NEAR_REL(mine, ref, testing::kFloat64ParityRel);
  RecordProperty("max_err_over_max_ref", Scientific(testing::CompareTensors(mine, ref).ratio));
}

TEST_P(KdeEntropyGoldenTest, ChunkedMatchesFloat64Reference) {
  KdeOptions options;
  options.chunk_size = 1000;  // several chunks for every block of these fixtures
  EXPECT_TENSOR_NEAR_REL(BlockEntropies(options), io_.Get("entropy64"), testing::kFloat64ParityRel);
}

INSTANTIATE_TEST_SUITE_P(Golden, KdeEntropyGoldenTest,
                         ::testing::Values("vit_p4_d48", "swin_p4_w7_d16", "vit_fmnist"));

}  // namespace
}  // namespace psaq::gen
