// Data-parallel detector training under mpirun (2 and 3 ranks): a few steps on uneven shards of
// the same global batches (flips and anchor/RoI samples on) end at the parameters and losses of
// a one-process run of the same global batches, identical on every rank; the sharded validation
// AP equals the one-process one.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "dist/mpi_communicator.h"
#include "launch/train/detect_train.h"
#include "model/data/coco_eval_json.h"
#include "model/data/scenes.h"
#include "model/state_dict.h"
#include "tests/model/detect/tiny_detector.h"
#include "tests/testing/mpi_test_util.h"
#include "tests/testing/tensor_near.h"
#include "tests/testing/tolerances.h"

namespace psaq::train {
namespace {

// float64: the runs differ only in how the per-image gradients and loss sums are added up.
constexpr double kDataParallelRel = ::psaq::testing::kFloat64ParityRel;

DetectTrainOptions FewSteps() {
  DetectTrainOptions o;
  o.epochs = 2;
  o.batch_size = 5;  // uneven over 2 and 3 ranks
  o.max_steps = 3;   // crosses the epoch boundary (2 steps per epoch of 10 images)
  o.lr.peak_lr = 1e-3;
  o.warmup_epochs = 0.5;
  o.clip_grad_norm = 5.0;
  o.seed = 3;
  o.log_every_steps = 1;
  return o;
}

TEST(DetectTrainMpiTest, DataParallelStepsMatchTheOneProcessRun) {
  dist::MpiCommunicator comm;
  const testing::SharedTempDir dir("detect_train");
  if (comm.rank() == 0) {
    data::ScenesOptions s;
    s.num_images = 10;
    s.canvas_size = 160;
    s.seed = 4;
    s.split = "train";
    data::MakeScenes(s, dir / "scenes");
  }
  comm.Barrier();
  data::CocoDataset full(dir / "scenes/instances_train.json", "");
  ASSERT_EQ(full.num_classes(), 10);
  // The tiny test detector with the scenes' 10 classes, float64.
  auto tiny10 = [](uint64_t seed) {
    at::manual_seed(seed);
    detect::DetectorConfig c = detect::testing::TinyDetectorConfig();
    c.num_classes = 10;
    auto m = std::make_shared<detect::MaskRcnn>(c);
    m->to(at::kDouble);
    return m;
  };
  const auto single = tiny10(21);
  const DetectTrainResult reference = TrainDetector(*single, full, nullptr, FewSteps(), nullptr);
  // Every rank starts from different weights: TrainDetector broadcasts rank 0's.
  const auto parallel = tiny10(comm.rank() == 0 ? 21 : 1000 + comm.rank());
  const DetectTrainResult result = TrainDetector(*parallel, full, nullptr, FewSteps(), &comm);

  EXPECT_EQ(result.steps, 3);
  EXPECT_FALSE(result.finished);
  ASSERT_EQ(result.epochs.size(), 1u);
  ASSERT_EQ(reference.epochs.size(), 1u);
  for (int i = 0; i < detect::DetectorLosses::kNumTerms; ++i) {
    EXPECT_NEAR(result.epochs[0].terms[i], reference.epochs[0].terms[i],
                kDataParallelRel * std::abs(reference.epochs[0].terms[i]))
        << detect::DetectorLosses::Names()[i];
  }
  const auto got = model::StateDict(*parallel);
  const auto want = model::StateDict(*single);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(::psaq::testing::TensorsNearRel(got[i].second, want[i].second, kDataParallelRel,
                                                got[i].first));
    at::Tensor root = got[i].second.detach().clone();
    comm.Broadcast(root, 0);
    EXPECT_TRUE(
        ::psaq::testing::TensorsIdentical(got[i].second, root, got[i].first + " vs rank 0"));
  }

  // Sharded validation AP = one-process AP (on the training images, as a validation set).
  const DetectEvalResult one = EvaluateDetector(*single, full, 7, 3, nullptr);
  const DetectEvalResult many = EvaluateDetector(*single, full, 7, 3, &comm);
  EXPECT_EQ(one.box.images, 7);
  EXPECT_EQ(many.box.images, 7);
  for (size_t k = 0; k < one.box.stats.size(); ++k) {
    EXPECT_EQ(many.box.stats[k], one.box.stats[k]) << k;
    EXPECT_EQ(many.mask.stats[k], one.mask.stats[k]) << k;
  }
}

}  // namespace
}  // namespace psaq::train
