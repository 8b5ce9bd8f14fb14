// The output directory: psaq's own entries told apart from everything else, runs inside runs found,
// and the start-of-job refusals that protect a user's files (launch/job/output_dir.h). The whole
// job's use of them is in quantize_job_test.cc.
#include "launch/job/output_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "launch/job/quantize_job.h"
#include "tests/launch/job/job_test_util.h"
#include "tests/testing/single_rank_communicator.h"
#include "tests/testing/temp_dir.h"

namespace psaq::job {
namespace {

using testing::SingleRankCommunicator;
using testing::TempDir;
using testing::TinyJob;
namespace fs = std::filesystem;

std::vector<std::string> ForeignPaths(const OutputDirContents& c) {
  std::vector<std::string> out;
  for (const ForeignEntry& e : c.foreign) {
    out.push_back(e.path + (e.reason.empty() ? "" : " (" + e.reason + ")") +
                  (e.psaq_name ? " [psaq name]" : ""));
  }
  return out;
}

bool Has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// A finished quantize run and a preempted V1 run (samples, export, report; checkpoint with
// steps and blobs) hold nothing foreign: an overwrite of either may proceed.
TEST(OutputDirTest, PsaqsOwnRunsScanClean) {
  TempDir dir;
  SingleRankCommunicator comm;
  RunQuantizeJob(TinyJob(CalibrationSource::kNoise, dir / "done"), comm);
  // Temporaries a killed writer leaves are psaq's too.
  dir.Write("done/report.json.tmp.123", "{");
  dir.Write("done/samples/shard-0-of-1.safetensors.tmp.77", "x");
  OutputDirContents c = ScanOutputDir(dir / "done");
  EXPECT_TRUE(c.foreign.empty()) << ForeignPaths(c).front();
  for (const char* p :
       {"samples/shard-0-of-1.safetensors", "samples", "model.safetensors", "model.manifest.json",
        "report.json", "report.json.tmp.123", "samples/shard-0-of-1.safetensors.tmp.77"}) {
    EXPECT_TRUE(Has(c.psaq, p)) << p;
  }
  // Directories come after their contents (the order of deletion).
  const auto at = [&](const std::string& p) { return std::find(c.psaq.begin(), c.psaq.end(), p); };
  EXPECT_LT(at("samples/shard-0-of-1.safetensors"), at("samples"));

  QuantizeJobOptions v1 = TinyJob(CalibrationSource::kV1, dir / "cut");
  int64_t steps = 0;
  v1.on_step = [&](const std::string&, int64_t) { ++steps; };
  v1.should_stop = [&] { return steps >= 10; };  // batch 2: blobs and a step checkpoint exist
  ASSERT_EQ(RunQuantizeJob(v1, comm).status, JobStatus::kPreempted);
  dir.Write("cut/checkpoint/step-99/rank-0.safetensors.tmp.5", "");
  c = ScanOutputDir(dir / "cut");
  EXPECT_TRUE(c.foreign.empty()) << ForeignPaths(c).front();
  EXPECT_TRUE(Has(c.psaq, "checkpoint/state.json"));
  EXPECT_TRUE(Has(c.psaq, "checkpoint/blobs/v1-batch-0.safetensors"));
  EXPECT_TRUE(Has(c.psaq, "checkpoint/step-99/rank-0.safetensors.tmp.5"));
  EXPECT_TRUE(Has(c.psaq, "checkpoint"));
  EXPECT_TRUE(std::any_of(c.psaq.begin(), c.psaq.end(), [](const std::string& p) {
    return std::regex_match(p, std::regex(R"(checkpoint/step-[0-9]+/rank-0\.safetensors)"));
  }));
}

TEST(OutputDirTest, ForeignEntriesAreListedTopmostWithTheirReasons) {
  TempDir dir;
  SingleRankCommunicator comm;
  RunQuantizeJob(TinyJob(CalibrationSource::kNoise, dir / "run"), comm);
  dir.Write("run/samples/mydata/a/x.png", "png");
  dir.Write("run/checkpoint/important.db", "db");
  dir.Write("run/notes.txt", "mine");
  dir.Write("run/samples/shard-1-of-2.safetensors", "not safetensors");
  fs::copy_file(testing::GoldenWeights("vit_fmnist"), dir / "run/checkpoint/state.json");
  fs::remove(dir / "run/model.manifest.json");
  // A FIFO would block whoever opens it: the scan must not.
  ASSERT_EQ(::mkfifo((dir / "run/model.manifest.json").c_str(), 0644), 0);
  fs::create_directory_symlink(dir / "run/samples", dir / "run/checkpoint/blobs");
  const std::vector<std::string> foreign = ForeignPaths(ScanOutputDir(dir / "run"));
  EXPECT_EQ(
      foreign,
      (std::vector<std::string>{
          "checkpoint/blobs (a symbolic link) [psaq name]", "checkpoint/important.db",
          "checkpoint/state.json (not a psaq checkpoint) [psaq name]",
          "model.manifest.json (not a regular file) [psaq name]", "notes.txt", "samples/mydata/",
          "samples/shard-1-of-2.safetensors (not a psaq sample shard) [psaq name]"}));

  // A float weights file where the export goes, a report psaq did not write.
  TempDir other;
  fs::copy_file(testing::GoldenWeights("vit_fmnist"), other / "model.safetensors");
  other.Write("report.json", R"({"status": "complete", "accuracy": 0.9})");
  EXPECT_EQ(ForeignPaths(ScanOutputDir(other.path().string())),
            (std::vector<std::string>{"model.safetensors (not a psaq export) [psaq name]",
                                      "report.json (not a psaq report) [psaq name]"}));
  EXPECT_TRUE(ScanOutputDir(other / "absent").psaq.empty());
}

TEST(OutputDirTest, EnclosingRunFindsFinishedRunningAndInterruptedRuns) {
  TempDir dir;
  SingleRankCommunicator comm;
  RunQuantizeJob(TinyJob(CalibrationSource::kNoise, dir / "done"), comm);
  std::string marker;
  EXPECT_EQ(EnclosingRun(dir / "done/samples/x", &marker), dir / "done");
  EXPECT_EQ(marker, "report.json");
  EXPECT_EQ(EnclosingRun(dir / "done/samples/x/y/", &marker), dir / "done");
  EXPECT_EQ(EnclosingRun(dir / "done/../done/samples/x", &marker), dir / "done");
  EXPECT_EQ(EnclosingRun(dir / "done"), "");  // a run is not inside itself
  EXPECT_EQ(EnclosingRun(dir / "other"), "");

  dir.Write("running/.psaq.lock", "");  // a job that has just started, or was killed
  EXPECT_EQ(EnclosingRun(dir / "running/samples/x", &marker), dir / "running");
  EXPECT_EQ(marker, ".psaq.lock");
  // A symbolic link into a run does not hide it.
  fs::create_directory_symlink(dir / "running", dir / "link");
  EXPECT_EQ(EnclosingRun(dir / "link/x"), dir / "running");

  // A report.json psaq did not write does not make a run.
  dir.Write("mine/report.json", R"({"status": "complete"})");
  EXPECT_EQ(EnclosingRun(dir / "mine/x"), "");
}

TEST(OutputDirTest, RemoveCheckpointLeavesForeignFiles) {
  TempDir dir;
  SingleRankCommunicator comm;
  QuantizeJobOptions v1 = TinyJob(CalibrationSource::kV1, dir / "cut");
  v1.should_stop = [] { return true; };
  ASSERT_EQ(RunQuantizeJob(v1, comm).status, JobStatus::kPreempted);
  dir.Write("cut/checkpoint/important.db", "db");
  RemoveCheckpoint(dir / "cut");
  EXPECT_TRUE(fs::exists(dir / "cut/checkpoint/important.db"));
  EXPECT_FALSE(fs::exists(dir / "cut/checkpoint/state.json"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir / "cut/checkpoint"), fs::directory_iterator{}),
            1);
  fs::remove(dir / "cut/checkpoint/important.db");
  RemoveCheckpoint(dir / "cut");
  EXPECT_FALSE(fs::exists(dir / "cut/checkpoint"));
}

}  // namespace
}  // namespace psaq::job
