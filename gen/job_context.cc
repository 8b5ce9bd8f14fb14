#include "gen/job_context.h"

#include <c10/util/Exception.h>

#include <algorithm>

#include "dist/partition.h"
#include "gen/collective_util.h"

namespace psaq::gen {

std::string JobStatusName(JobStatus status) {
  return status == JobStatus::kComplete ? "complete" : "preempted";
}

bool JobContext::StopRequested() {
  const bool local = should_stop ? should_stop() : false;
  return AnyRank(comm, local, CollectiveDevice(comm, device));
}

std::vector<std::pair<int64_t, int64_t>> ShardBatches(int64_t num_samples, int world, int rank,
                                                      int64_t batch_size) {
  TORCH_CHECK(batch_size >= 1, "ShardBatches: batch_size must be >= 1");
  const dist::Range mine = dist::ShardRange(num_samples, world, rank);
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int64_t first = mine.begin; first < mine.end; first += batch_size) {
    out.emplace_back(first, std::min(batch_size, mine.end - first));
  }
  return out;
}

}  // namespace psaq::gen
