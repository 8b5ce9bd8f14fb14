// The current time as an ISO-8601 UTC string, "2026-11-28T21:42:06Z", for the "created" fields of
// the files psaq writes (exports, sample shards, checkpoints, reports).
#pragma once

#include <string>

namespace psaq::base {

std::string UtcNow();

}  // namespace psaq::base
