// The job on one rank: outputs, refusals, preemption and crash recovery, every source.
#include "launch/job/quantize_job.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "launch/job/calibration_sources.h"
#include "dist/base/atomic_file.h"
#include "quant/export.h"
#include "tests/launch/job/job_test_util.h"
#include "tests/testing/single_rank_communicator.h"
#include "tests/testing/temp_dir.h"

namespace psaq::job {
namespace {

using testing::SingleRankCommunicator;
using testing::TempDir;
using testing::TinyJob;
namespace fs = std::filesystem;

// What a test-induced crash throws (stands in for SIGKILL: nothing more is written).
struct SimulatedKill {};

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(QuantizeJobTest, V1WritesSamplesExportAndReport) {
  TempDir dir;
  SingleRankCommunicator comm;
  QuantizeJobOptions o = TinyJob(CalibrationSource::kV1, dir / "out");
  JobResult r = RunQuantizeJob(o, comm);
  EXPECT_EQ(r.status, JobStatus::kComplete);
  EXPECT_TRUE(fs::exists(dir / "out/samples/shard-0-of-1.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "out/model.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "out/model.manifest.json"));
  EXPECT_FALSE(fs::exists(dir / "out/checkpoint"));  // removed once complete
  const nlohmann::json report = nlohmann::json::parse(base::ReadTextFile(dir / "out/report.json"));
  EXPECT_EQ(report, r.report);
  EXPECT_EQ(report["status"], "complete");
  EXPECT_EQ(report["options"]["method"], "psaq_v1");
  EXPECT_EQ(report["options"]["v1"]["iterations_per_epoch"], 4);
  EXPECT_EQ(report["ranks"][0]["work"], 8.0 * 8);  // 8 samples x 8 steps
  EXPECT_GT(report["phases"]["v1_generation"]["seconds"].get<double>(), 0.0);
  EXPECT_GT(report["phases"]["checkpointing"]["seconds"].get<double>(), 0.0);
  EXPECT_EQ(report["metrics"]["num_samples"], 8);
  // The export imports and reproduces the job's quantized outputs on its samples.
  quant::ImportedModel imported = quant::ImportQuantizedModel(r.model_path);
  EXPECT_EQ(imported.metadata.at("method"), "psaq_v1");
  EXPECT_EQ(imported.metadata.at("num_samples"), "8");
  const SampleSet samples = ReadSampleSet({dir / "out"});
  model::ModelPtr teacher = testing::GoldenTeacher();
  at::NoGradGuard no_grad;
  const at::Tensor ref = teacher->forward(samples.images).to(at::kDouble);
  const at::Tensor out = imported.model->Forward(samples.images).to(at::kDouble);
  const double sqnr =
      10 * std::log10(ref.pow(2).sum().item<double>() / (out - ref).pow(2).sum().item<double>());
  EXPECT_NEAR(sqnr, report["metrics"]["output_sqnr_db"].get<double>(), 1e-6);
  // W4A8 on the golden model (random weights scaled x5, so harsh to quantize): measured 5.3 dB;
  // a broken export or calibration gives <= 0 dB.
  EXPECT_GT(sqnr, 3.0);
}

TEST(QuantizeJobTest, RefusesFinishedRunsAndUnresumedCheckpoints) {
  TempDir dir;
  SingleRankCommunicator comm;
  QuantizeJobOptions o = TinyJob(CalibrationSource::kNoise, dir / "out");
  RunQuantizeJob(o, comm);
  std::string error = ErrorOf([&] { RunQuantizeJob(o, comm); });
  EXPECT_NE(error.find("already holds a finished run"), std::string::npos) << error;
  o.overwrite = true;
  EXPECT_EQ(RunQuantizeJob(o, comm).status, JobStatus::kComplete);
  // An interrupted V1 run leaves a checkpoint; a new run must resume it or overwrite.
  QuantizeJobOptions v1 = TinyJob(CalibrationSource::kV1, dir / "v1");
  v1.should_stop = [] { return true; };
  EXPECT_EQ(RunQuantizeJob(v1, comm).status, JobStatus::kPreempted);
  v1.should_stop = nullptr;
  error = ErrorOf([&] { RunQuantizeJob(v1, comm); });
  EXPECT_NE(error.find("holds the checkpoint of an unfinished run"), std::string::npos) << error;
  // Resuming with different options names them.
  v1.resume = true;
  v1.v1.lr = 0.3;
  error = ErrorOf([&] { RunQuantizeJob(v1, comm); });
  EXPECT_NE(error.find("v1.lr: checkpoint 0.0, now 0.3"), std::string::npos) << error;
}

// Interrupts a run (preemption or a crash from the step hook), resumes it, and compares every
// output with an uninterrupted run.
void InterruptAndResume(CalibrationSource source, bool crash, int64_t at_step) {
  TempDir dir;
  SingleRankCommunicator comm;
  RunQuantizeJob(TinyJob(source, dir / "full"), comm);

  QuantizeJobOptions o = TinyJob(source, dir / "cut");
  int64_t steps = 0;
  if (crash) {
    o.on_step = [&](const std::string&, int64_t) {
      if (++steps == at_step) throw SimulatedKill{};
    };
    EXPECT_THROW(RunQuantizeJob(o, comm), SimulatedKill);
    EXPECT_FALSE(fs::exists(dir / "cut/report.json"));
  } else {
    o.on_step = [&](const std::string&, int64_t) { ++steps; };
    o.should_stop = [&] { return steps >= at_step; };
    JobResult r = RunQuantizeJob(o, comm);
    EXPECT_EQ(r.status, JobStatus::kPreempted);
    EXPECT_EQ(r.report["status"], "preempted");
  }
  EXPECT_TRUE(fs::exists(dir / "cut/checkpoint/state.json"));
  o = TinyJob(source, dir / "cut");
  o.resume = true;
  JobResult r = RunQuantizeJob(o, comm);
  EXPECT_EQ(r.status, JobStatus::kComplete);
  testing::ExpectSameSamples(dir / "full", dir / "cut");
  testing::ExpectSameTensors(dir / "full/model.safetensors", dir / "cut/model.safetensors");
}

TEST(QuantizeJobTest, V1KilledMidBatchResumesToIdenticalOutputs) {
  // Checkpoints every 3 steps and at batch ends (8 steps per batch): step 13 is batch 2's
  // step 5, two steps past the last checkpoint (batch 2, step 3).
  InterruptAndResume(CalibrationSource::kV1, true, 13);
}
TEST(QuantizeJobTest, V1PreemptedResumesToIdenticalOutputs) {
  InterruptAndResume(CalibrationSource::kV1, false, 5);
}
TEST(QuantizeJobTest, V2KilledMidRoundResumesToIdenticalOutputs) {
  // Per round: 2 batches x 3 sample steps + 3 student steps = 9; step 13 is in round 2.
  InterruptAndResume(CalibrationSource::kV2, true, 13);
}
TEST(QuantizeJobTest, V2PreemptedResumesToIdenticalOutputs) {
  InterruptAndResume(CalibrationSource::kV2, false, 1);
}

TEST(QuantizeJobTest, RealNoiseAndSampleFileSources) {
  TempDir dir;
  SingleRankCommunicator comm;
  QuantizeJobOptions real = TinyJob(CalibrationSource::kReal, dir / "real");
  JobResult r = RunQuantizeJob(real, comm);
  EXPECT_EQ(r.report["options"]["method"], "real");
  const SampleSet real_set = ReadSampleSet({dir / "real"});
  // Fashion-MNIST images: preprocessed pixels lie in the box, and come from the training split.
  EXPECT_EQ(real_set.metadata.at("method"), "real");
  EXPECT_GT(real_set.images.max().item<float>(), 2.0f);

  QuantizeJobOptions noise = TinyJob(CalibrationSource::kNoise, dir / "noise");
  RunGenerateJob(noise, comm);
  EXPECT_FALSE(fs::exists(dir / "noise/model.safetensors"));
  const SampleSet noise_set = ReadSampleSet({dir / "noise"});
  EXPECT_NEAR(noise_set.images.std().item<float>(), 1.0f, 0.05f);
  EXPECT_EQ(nlohmann::json::parse(base::ReadTextFile(dir / "noise/report.json"))["status"], "complete");

  // Quantizing from the noise run's samples equals quantizing with the noise source directly.
  QuantizeJobOptions files = TinyJob(CalibrationSource::kSampleFiles, dir / "files");
  files.sample_files = {dir / "noise"};
  r = RunQuantizeJob(files, comm);
  EXPECT_EQ(r.report["options"]["method"], "noise");
  EXPECT_FALSE(fs::exists(dir / "files/samples"));
  RunQuantizeJob(TinyJob(CalibrationSource::kNoise, dir / "noise2"), comm);
  testing::ExpectSameTensors(dir / "files/model.safetensors", dir / "noise2/model.safetensors");
}

TEST(QuantizeJobTest, SeededRealSelectionIsAPermutationPrefix) {
  const std::vector<int64_t> a = SeededSelection(3, 100, 10);
  EXPECT_EQ(a, SeededSelection(3, 100, 10));
  EXPECT_NE(a, SeededSelection(4, 100, 10));
  std::vector<int64_t> sorted = SeededSelection(3, 10, 10);
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 10; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);
}

TEST(QuantizeJobTest, ValidatesOptions) {
  QuantizeJobOptions o = TinyJob(CalibrationSource::kV1, "/tmp/x");
  o.model = "";
  EXPECT_THROW(ValidateJobOptions(o), c10::Error);
  o = TinyJob(CalibrationSource::kSampleFiles, "/tmp/x");
  EXPECT_THROW(ValidateJobOptions(o), c10::Error);
  o = TinyJob(CalibrationSource::kV1, "/tmp/x");
  o.v1.warmup_iterations = 9;
  EXPECT_THROW(ValidateJobOptions(o), c10::Error);
  EXPECT_EQ(ParseCalibrationSource("files"), CalibrationSource::kSampleFiles);
  EXPECT_THROW(ParseCalibrationSource("v3"), std::invalid_argument);
}

}  // namespace
}  // namespace psaq::job
