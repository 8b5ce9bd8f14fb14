// Shared pieces of the job tests (single-rank and MPI): tiny job options on the golden
// Fashion-MNIST ViT, and comparisons of a job's outputs.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "launch/job/job_options.h"
#include "launch/job/output_dir.h"
#include "launch/job/sample_store.h"
#include "model/safetensors.h"
#include "tests/testing/tensor_near.h"
#include "tests/testing/tiny_models.h"

namespace psaq::testing {

// vit_fmnist (28x28x1), 8 samples in batches of 4, V1 of 2 x 4 steps, V2 of 2 rounds of 3 + 3
// steps: about a second per job on one core.
inline job::QuantizeJobOptions TinyJob(job::CalibrationSource source,
                                       const std::string& output_dir) {
  job::QuantizeJobOptions o;
  o.model = GoldenWeights("vit_fmnist");
  o.source = source;
  o.num_samples = 8;
  o.batch_size = 4;
  o.seed = 21;
  o.quant.weight_bits = 4;
  o.quant.act_bits = 8;
  o.v1.epochs = 2;
  o.v1.iterations_per_epoch = 4;
  o.v1.warmup_iterations = 1;
  o.v2.rounds = 2;
  o.v2.sample_iterations = 3;
  o.v2.student_iterations = 3;
  o.v2.image_warmup = 1;
  o.v2.student_lr = 1e-3;
  o.output_dir = output_dir;
  o.checkpoint_every = 3;
  o.progress.interval_seconds = 1e9;
  return o;
}

// Every tensor of the two safetensors files is bit-identical (metadata such as "created" may
// differ).
inline void ExpectSameTensors(const std::string& a, const std::string& b) {
  const model::SafetensorsFile fa = model::ReadSafetensors(a);
  const model::SafetensorsFile fb = model::ReadSafetensors(b);
  ASSERT_EQ(fa.tensors.size(), fb.tensors.size()) << a << " vs " << b;
  const auto mb = fb.ToMap();
  for (const auto& [name, t] : fa.tensors) {
    ASSERT_EQ(mb.count(name), 1u) << name;
    EXPECT_TRUE(::psaq::testing::TensorsIdentical(t, mb.at(name), name)) << a;
  }
}

// The samples of two output directories are bit-identical, index by index.
inline void ExpectSameSamples(const std::string& dir_a, const std::string& dir_b) {
  const job::SampleSet a = job::ReadSampleSet({job::SamplesDir(dir_a)});
  const job::SampleSet b = job::ReadSampleSet({job::SamplesDir(dir_b)});
  EXPECT_TRUE(::psaq::testing::TensorsIdentical(a.images, b.images, "samples"));
}

}  // namespace psaq::testing
