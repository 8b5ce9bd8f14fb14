// The current time as an ISO-8601 UTC string, "2026-11-28T21:42:06Z", for the "created" fields of
// the files psaq writes (exports, sample shards, checkpoints, reports).
#pragma once

#include <ctime>
#include <string>

namespace psaq::base {

std::string UtcNow();
// `t` (seconds since the epoch) in the same form.
std::string UtcString(std::time_t t);

}  // namespace psaq::base
