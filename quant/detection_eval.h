// COCO box / mask AP (model/data/coco_eval.h) of detections made on several ranks, merged so that
// the result is exactly the single-process one (EvaluateCoco over all images), for any number
// of ranks and any split of the images.
//
//   // Each rank ran the detector on its shard of the images:
//   const data::CocoStats s =
//       EvaluateCocoSharded(comm, gt, my_image_ids, my_detections, data::CocoIouType::kBbox);
//   if (comm.rank() == 0) LOG(INFO) << "\n" << data::FormatCocoStats(s);
//
// How: each rank runs COCOeval's per-image step (data::EvaluateCocoImages) on its own images,
// serialises the records (at most 100 scores and 4 x 10 x 100 match flags per image and
// category), and one all-gather hands every rank all records; every rank then accumulates them
// (data::AccumulateCoco orders images by id, as pycocotools does, so the merge does not depend on
// the split) and summarises. The stats are identical on every rank.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <vector>

#include "dist/communicator.h"
#include "model/data/coco_eval.h"

namespace psaq::quant {

// Collective over `comm` (two all-gathers of bytes: lengths, then records; on the CPU for the
// MPI backend, on `device` for NCCL). Every rank passes the same `gt` and `type`; `image_ids` are
// the images this rank evaluated (the ranks' lists must be disjoint and together cover every
// image of gt; a rank may have none), `detections` the detections on them.
// Returns the 12 numbers with images = all images, detections and left_out summed over ranks.
// Throws std::runtime_error on EVERY rank (so no rank is left waiting in a collective) when a
// rank's input is bad -- "rank <r>: <data::EvaluateCocoImages' reason>" -- or an image is
// evaluated by two ranks or by none.
data::CocoStats EvaluateCocoSharded(dist::Communicator& comm, const data::CocoGroundTruth& gt,
                                    const std::vector<int64_t>& image_ids,
                                    const std::vector<data::CocoDetection>& detections,
                                    data::CocoIouType type,
                                    const c10::Device& device = c10::Device(c10::kCPU));

}  // namespace psaq::quant
