#include "launch/job/job_context.h"

#include <c10/util/Exception.h>

#include <algorithm>

#include "dist/collective_util.h"
#include "dist/partition.h"

namespace psaq::job {

std::string JobStatusName(JobStatus status) {
  return status == JobStatus::kComplete ? "complete" : "preempted";
}

bool JobContext::StopRequested() {
  const bool local = should_stop ? should_stop() : false;
  return dist::AnyRank(comm, local, dist::CollectiveDevice(comm, device));
}

}  // namespace psaq::job
