#include "launch/process.h"

#include <gtest/gtest.h>

namespace psaq::launch {
namespace {

TEST(IntraOpThreadsTest, SharesTheNodeAndRespectsBinding) {
  EXPECT_EQ(IntraOpThreads(16, 16, 1), 16);  // one rank, unbound: every core
  EXPECT_EQ(IntraOpThreads(16, 16, 4), 4);   // four unbound ranks share the node
  EXPECT_EQ(IntraOpThreads(1, 16, 2), 1);    // bound to one core
  EXPECT_EQ(IntraOpThreads(8, 16, 4), 4);    // bound to a socket of 8 shared by 2 of 4 ranks
  EXPECT_EQ(IntraOpThreads(2, 2, 3), 1);     // more ranks than cores: at least one thread
  EXPECT_EQ(IntraOpThreads(4, 64, 1), 4);    // a Slurm step's 4 CPUs on a big node
}

}  // namespace
}  // namespace psaq::launch
