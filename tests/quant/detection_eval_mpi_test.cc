// EvaluateCocoSharded over 2 and 3 ranks gives exactly (bit for bit) the single-process
// EvaluateCoco of the same data, for box and mask AP, for contiguous, interleaved and lopsided
// splits of the images (ranks without images included); bad input on one rank or a bad split
// throws on every rank instead of hanging.
#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "dist/mpi_communicator.h"
#include "dist/partition.h"
#include "quant/detection_eval.h"
#include "tests/model/data/coco_eval_fixtures.h"

namespace psaq::quant {
namespace {

using data::CocoIouType;

// This rank's detections: those on `image_ids`.
std::vector<data::CocoDetection> DetectionsOn(const std::vector<data::CocoDetection>& all,
                                              const std::vector<int64_t>& image_ids) {
  const std::set<int64_t> mine(image_ids.begin(), image_ids.end());
  std::vector<data::CocoDetection> out;
  for (const auto& d : all) {
    if (mine.count(d.image_id)) out.push_back(d);
  }
  return out;
}

void ExpectSameStats(const data::CocoStats& sharded, const data::CocoStats& single,
                     const std::string& what) {
  for (size_t s = 0; s < 12; ++s) {
    // Bitwise: the merge must not change a single operation.
    EXPECT_EQ(sharded.stats[s], single.stats[s]) << what << ": " << data::CocoStats::Names()[s];
  }
  EXPECT_EQ(sharded.images, single.images) << what;
  EXPECT_EQ(sharded.detections, single.detections) << what;
  EXPECT_EQ(sharded.left_out, single.left_out) << what;
}

// Which images rank r evaluates, of the sorted ids.
enum class Split { kContiguous, kInterleaved, kAllOnLastRank };

std::vector<int64_t> ShardOf(const std::vector<int64_t>& ids, Split split, int size, int rank) {
  std::vector<int64_t> out;
  const auto n = static_cast<int64_t>(ids.size());
  if (split == Split::kContiguous) {
    const dist::Range r = dist::ShardRange(n, size, rank);
    for (int64_t i = r.begin; i < r.end; ++i) out.push_back(ids[i]);
  } else if (split == Split::kInterleaved) {
    for (int64_t i = rank; i < n; i += size) out.push_back(ids[i]);
  } else if (rank == size - 1) {
    out = ids;
  }
  return out;
}

class DetectionEvalMpiTest : public ::testing::Test {
 protected:
  dist::MpiCommunicator comm_;
};

TEST_F(DetectionEvalMpiTest, ShardedEqualsSingleProcess) {
  for (bool masks : {false, true}) {
    testing::RandomCocoOptions o;
    o.images = 17;  // not a multiple of 2 or 3
    o.categories = 5;
    o.masks = masks;
    o.crowded_image_detections = 130;
    const testing::CocoCase c = testing::RandomCocoCase(masks ? 7 : 8, o);
    std::vector<data::CocoDetection> dets = c.detections;
    dets.push_back(dets.front());
    dets.back().category_id = 1000;  // left out on whichever rank holds it
    const std::vector<int64_t> ids = data::CocoImageIds(c.gt);
    for (CocoIouType type : {CocoIouType::kBbox, CocoIouType::kSegm}) {
      if (type == CocoIouType::kSegm && !masks) continue;
      const data::CocoStats single = data::EvaluateCoco(c.gt, dets, type);
      ASSERT_GT(single.stats[0], 0.0);
      for (Split split : {Split::kContiguous, Split::kInterleaved, Split::kAllOnLastRank}) {
        const std::vector<int64_t> mine = ShardOf(ids, split, comm_.size(), comm_.rank());
        const data::CocoStats sharded =
            EvaluateCocoSharded(comm_, c.gt, mine, DetectionsOn(dets, mine), type);
        ExpectSameStats(
            sharded, single,
            data::CocoIouTypeName(type) + ", split " + std::to_string(static_cast<int>(split)));
      }
    }
  }
}

// Expects EvaluateCocoSharded to throw on this rank with `part` in the message.
void ExpectThrowsEverywhere(dist::Communicator& comm, const testing::CocoCase& c,
                            const std::vector<int64_t>& mine,
                            const std::vector<data::CocoDetection>& dets, const std::string& part) {
  try {
    EvaluateCocoSharded(comm, c.gt, mine, dets, CocoIouType::kBbox);
    ADD_FAILURE() << "rank " << comm.rank() << ": no error; expected '" << part << "'";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST_F(DetectionEvalMpiTest, BadInputOrSplitThrowsOnEveryRank) {
  const testing::CocoCase c = testing::RandomCocoCase(9);
  const std::vector<int64_t> ids = data::CocoImageIds(c.gt);
  const int last = comm_.size() - 1;
  std::vector<int64_t> mine = ShardOf(ids, Split::kContiguous, comm_.size(), comm_.rank());
  const std::vector<data::CocoDetection> dets = DetectionsOn(c.detections, mine);

  // The last rank also claims rank 0's first image.
  std::vector<int64_t> overlap = mine;
  if (comm_.rank() == last) overlap.push_back(ids.front());
  ExpectThrowsEverywhere(comm_, c, overlap, dets,
                         "image " + std::to_string(ids.front()) +
                             " was evaluated by rank 0 and by rank " + std::to_string(last));
  // The last rank drops its last image (and the detections on it).
  std::vector<int64_t> missing = mine;
  if (comm_.rank() == last) missing.pop_back();
  ExpectThrowsEverywhere(
      comm_, c, missing, DetectionsOn(c.detections, missing),
      "image " + std::to_string(ids.back()) + " of the ground truth was evaluated by no rank");
  // Rank 1 has a detection on an image it does not evaluate: its reason, on every rank.
  std::vector<data::CocoDetection> stray = dets;
  if (comm_.rank() == 1) stray.push_back(DetectionsOn(c.detections, {ids.front()}).front());
  ExpectThrowsEverywhere(comm_, c, mine, stray, "rank 1: coco_eval: detection ");
  ExpectThrowsEverywhere(comm_, c, mine, stray, "which is not among the images evaluated here");
  // After the errors the communicator still works: a good call succeeds.
  const data::CocoStats ok = EvaluateCocoSharded(comm_, c.gt, mine, dets, CocoIouType::kBbox);
  ExpectSameStats(ok, data::EvaluateCoco(c.gt, c.detections, CocoIouType::kBbox), "after errors");
}

}  // namespace
}  // namespace psaq::quant
