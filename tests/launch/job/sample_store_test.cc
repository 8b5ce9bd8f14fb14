#include "launch/job/sample_store.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>

#include "model/safetensors.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/tiny_models.h"
#include "tests/testing/tensor_near.h"

namespace psaq::job {
namespace {

using testing::TempDir;

const model::ModelConfig& Config() {
  static const model::ModelConfig config = testing::TinyViTConfig();  // [3, 16, 16]
  return config;
}

SampleShardInfo Info(int rank, int count, int64_t n) {
  SampleShardInfo info;
  info.method = "psaq_v1";
  info.num_samples = n;
  info.rank = rank;
  info.count = count;
  info.seed = 5;
  info.model = "tiny";
  return info;
}

// Samples 0..n-1 with image i filled with the value i.
at::Tensor Images(int64_t first, int64_t count) {
  return at::arange(first, first + count, at::kFloat)
      .view({count, 1, 1, 1})
      .expand({count, 3, 16, 16})
      .contiguous();
}

void ExpectThrowsWith(const std::function<void()>& f, const std::string& text) {
  try {
    f();
    FAIL() << "expected an error containing '" << text << "'";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

TEST(SampleStoreTest, ShardsReadBackInIndexOrder) {
  TempDir dir;
  const std::string samples = dir / "samples";
  // Shard 1 holds 3..6 and shard 0 holds 0..2, written in reverse row order.
  WriteSampleShard(samples, Images(3, 4), at::arange(3, 7), Config(), Info(1, 2, 7));
  WriteSampleShard(samples, Images(0, 3).flip({0}), at::arange(2, -1, -1), Config(), Info(0, 2, 7));
  EXPECT_TRUE(std::filesystem::exists(samples + "/shard-0-of-2.safetensors"));
  for (const std::string& source : {dir.path().string(), samples}) {  // the output dir or samples/
    SampleSet set = ReadSampleSet({source});
    ASSERT_EQ(set.num_samples(), 7);
    EXPECT_TENSOR_IDENTICAL(set.images, Images(0, 7));
    EXPECT_EQ(set.files.size(), 2u);
    EXPECT_EQ(set.metadata.at("method"), "psaq_v1");
    EXPECT_EQ(set.metadata.at("arch"), "vit");
    EXPECT_EQ(set.metadata.at("format"), "psaq_samples");
    CheckSamplesFitModel(set, Config(), "set");
  }
  // Explicit files work too; a model of another size is refused.
  SampleSet set =
      ReadSampleSet({samples + "/shard-1-of-2.safetensors", samples + "/shard-0-of-2.safetensors"});
  EXPECT_EQ(set.num_samples(), 7);
  model::ModelConfig other = Config();
  other.vit.img_size = 32;
  ExpectThrowsWith([&] { CheckSamplesFitModel(set, other, "set"); }, "[3, 32, 32]");
}

TEST(SampleStoreTest, MissingShardIsReportedWithTheMissingIndices) {
  TempDir dir;
  WriteSampleShard(dir.path(), Images(3, 4), at::arange(3, 7), Config(), Info(1, 2, 7));
  ExpectThrowsWith([&] { ReadSampleSet({dir.path()}); },
                   "3 of 7 sample indices are missing (0, 1, 2)");
}

TEST(SampleStoreTest, DuplicateIndexNamesBothFiles) {
  TempDir dir;
  WriteSampleShard(dir.path(), Images(0, 4), at::arange(0, 4), Config(), Info(0, 2, 7));
  WriteSampleShard(dir.path(), Images(3, 4), at::arange(3, 7), Config(), Info(1, 2, 7));
  ExpectThrowsWith([&] { ReadSampleSet({dir.path()}); }, "sample index 3 also appears in");
}

TEST(SampleStoreTest, RejectsDisagreeingShardsAndForeignFiles) {
  TempDir dir;
  WriteSampleShard(dir / "a", Images(0, 3), at::arange(0, 3), Config(), Info(0, 2, 7));
  SampleShardInfo other = Info(1, 2, 7);
  other.seed = 6;
  WriteSampleShard(dir / "a", Images(3, 4), at::arange(3, 7), Config(), other);
  ExpectThrowsWith([&] { ReadSampleSet({dir / "a"}); }, "metadata 'seed' = '6' differs");
  // An index out of range.
  WriteSampleShard(dir / "b", Images(0, 2), at::tensor({int64_t{0}, int64_t{9}}), Config(),
                   Info(0, 1, 2));
  ExpectThrowsWith([&] { ReadSampleSet({dir / "b"}); }, "sample index 9 is outside [0, 2)");
  // A weights file is not a sample file.
  model::WriteSafetensors(dir / "shard-0-of-1.safetensors", {{"w", at::zeros({2})}}, {});
  ExpectThrowsWith([&] { ReadSampleSet({dir / "shard-0-of-1.safetensors"}); },
                   "not a psaq sample file");
  ExpectThrowsWith([&] { ReadSampleSet({dir / "nothing"}); }, "no such file or directory");
  std::filesystem::create_directories(dir / "empty");
  ExpectThrowsWith([&] { ReadSampleSet({dir / "empty"}); }, "no shard-");
}

}  // namespace
}  // namespace psaq::job
