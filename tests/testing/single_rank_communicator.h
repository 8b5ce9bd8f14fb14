// The tests' name for dist::SingleRankCommunicator (dist/single_rank_communicator.h).
#pragma once

#include "dist/single_rank_communicator.h"

namespace psaq::testing {
using SingleRankCommunicator = dist::SingleRankCommunicator;
}  // namespace psaq::testing
