#include "launch/job/checkpoint.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "dist/base/atomic_file.h"
#include "tests/testing/single_rank_communicator.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/tensor_near.h"

namespace psaq::job {
namespace {

using testing::SingleRankCommunicator;
using testing::TempDir;
namespace fs = std::filesystem;

const nlohmann::json kOptions = {{"seed", 3}, {"v1", {{"lr", 0.2}, {"epochs", 2}}}};

CheckpointContent Content(float value, int64_t iteration) {
  CheckpointContent c;
  c.phase = "v1";
  c.progress = {{"iteration", iteration}};
  c.rank_tensors = {{"x", at::full({3}, value)}};
  c.shared_tensors = {{"s", at::full({2}, 2 * value)}};
  return c;
}

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(CheckpointTest, WriteThenReadReturnsTheLatest) {
  TempDir dir;
  SingleRankCommunicator comm;
  CheckpointStore store(dir / "ckpt", comm, kOptions);
  EXPECT_FALSE(store.Exists());
  EXPECT_FALSE(store.Read().has_value());
  store.Write(Content(1, 10));
  store.Write(Content(2, 20));
  EXPECT_TRUE(store.Exists());
  EXPECT_FALSE(fs::exists(dir / "ckpt/step-1"));  // superseded checkpoints are removed
  CheckpointStore reader(dir / "ckpt", comm, kOptions);
  std::optional<LoadedCheckpoint> c = reader.Read();
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->sequence, 2);
  EXPECT_EQ(c->phase, "v1");
  EXPECT_EQ(c->progress["iteration"], 20);
  EXPECT_TENSOR_IDENTICAL(c->rank_tensors.at("x"), at::full({3}, 2.0f));
  EXPECT_TENSOR_IDENTICAL(c->shared_tensors.at("s"), at::full({2}, 4.0f));
  // The next write continues the numbering.
  reader.Write(Content(3, 30));
  EXPECT_TRUE(fs::exists(dir / "ckpt/step-3/rank-0.safetensors"));
}

TEST(CheckpointTest, UnfinishedNextCheckpointIsIgnored) {
  TempDir dir;
  SingleRankCommunicator comm;
  CheckpointStore store(dir / "ckpt", comm, kOptions);
  store.Write(Content(1, 10));
  // A kill while writing checkpoint 2: a torn temporary and a complete-looking rank file, but
  // state.json still names checkpoint 1.
  fs::create_directories(dir / "ckpt/step-2");
  std::ofstream(dir / "ckpt/step-2/rank-0.safetensors.tmp.999") << "garbage";
  fs::copy_file(dir / "ckpt/step-1/rank-0.safetensors", dir / "ckpt/step-2/rank-0.safetensors");
  std::ofstream(dir / "ckpt/state.json.tmp.999") << "{\"torn\":";
  CheckpointStore reader(dir / "ckpt", comm, kOptions);
  auto c = reader.Read();
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->sequence, 1);
  EXPECT_EQ(c->progress["iteration"], 10);
  reader.Write(Content(5, 50));  // overwrites the leftovers of the unfinished one
  EXPECT_EQ(CheckpointStore(dir / "ckpt", comm, kOptions).Read()->progress["iteration"], 50);
}

TEST(CheckpointTest, DifferentOptionsAreNamed) {
  TempDir dir;
  SingleRankCommunicator comm;
  CheckpointStore(dir / "ckpt", comm, kOptions).Write(Content(1, 10));
  nlohmann::json changed = kOptions;
  changed["v1"]["lr"] = 0.25;
  changed["extra"] = true;
  const std::string error = ErrorOf([&] { CheckpointStore(dir / "ckpt", comm, changed).Read(); });
  EXPECT_NE(error.find("v1.lr: checkpoint 0.2, now 0.25"), std::string::npos) << error;
  EXPECT_NE(error.find("extra: absent in the checkpoint"), std::string::npos) << error;
}

TEST(CheckpointTest, WorldSizeMismatchAndDamageAreErrors) {
  TempDir dir;
  SingleRankCommunicator two(2, 0);  // rank 0 of 2: writes rank-0 only
  CheckpointStore(dir / "ckpt", two, kOptions).Write(Content(1, 10));
  SingleRankCommunicator one;
  std::string error = ErrorOf([&] { CheckpointStore(dir / "ckpt", one, kOptions).Read(); });
  EXPECT_NE(error.find("written by 2 ranks, this job has 1"), std::string::npos) << error;
  // Rank 1 of the same world finds its file missing.
  SingleRankCommunicator rank1(2, 1);
  error = ErrorOf([&] { CheckpointStore(dir / "ckpt", rank1, kOptions).Read(); });
  EXPECT_NE(error.find("step-1/rank-1.safetensors', which is missing"), std::string::npos) << error;
  // A truncated rank file.
  fs::resize_file(dir / "ckpt/step-1/rank-0.safetensors", 20);
  error = ErrorOf([&] { CheckpointStore(dir / "ckpt", two, kOptions).Read(); });
  EXPECT_NE(error.find("rank-0.safetensors"), std::string::npos) << error;
  // A state.json that is not JSON.
  base::WriteFileAtomic(dir / "ckpt/state.json", "{");
  error = ErrorOf([&] { CheckpointStore(dir / "ckpt", two, kOptions).Read(); });
  EXPECT_NE(error.find("not valid JSON"), std::string::npos) << error;
}

TEST(CheckpointTest, BlobsRoundTripAndCheckOptions) {
  TempDir dir;
  SingleRankCommunicator comm;
  CheckpointStore store(dir / "ckpt", comm, kOptions);
  store.WriteBlob("b0", {{"images", at::ones({2, 2})}});
  EXPECT_TENSOR_IDENTICAL(store.ReadBlob("b0").at("images"), at::ones({2, 2}));
  EXPECT_THROW(store.ReadBlob("b1"), std::runtime_error);
  nlohmann::json changed = kOptions;
  changed["seed"] = 4;
  EXPECT_THROW(CheckpointStore(dir / "ckpt", comm, changed).ReadBlob("b0"), std::runtime_error);
}

TEST(CheckpointTest, FlattenAndHash) {
  const nlohmann::json flat = FlattenJson(kOptions);
  EXPECT_EQ(flat["v1.lr"], 0.2);
  EXPECT_EQ(flat.size(), 3u);
  EXPECT_EQ(OptionsHash(flat), OptionsHash(FlattenJson(kOptions)));
  EXPECT_NE(OptionsHash(flat), OptionsHash(FlattenJson({{"seed", 4}})));
}

}  // namespace
}  // namespace psaq::job
