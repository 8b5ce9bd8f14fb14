// MpiContext in a program started without mpirun: an MPI singleton. One test only, because
// MPI can be initialised once per process.
#include "dist/mpi_context.h"

#include <c10/util/Exception.h>
#include <gtest/gtest.h>

namespace psaq::dist {
namespace {

TEST(MpiContextTest, SingletonInitialisesOnceFinalisesAndRefusesASecondContext) {
  ASSERT_FALSE(MpiContext::Exists());
  {
    MpiContext mpi;
    EXPECT_TRUE(MpiContext::Exists());
    EXPECT_TRUE(mpi.owns_mpi());
    EXPECT_EQ(mpi.rank(), 0);
    EXPECT_EQ(mpi.size(), 1);
    EXPECT_TRUE(mpi.is_root());
    EXPECT_GE(mpi.provided_thread_level(), MPI_THREAD_FUNNELED);
    EXPECT_THROW(MpiContext second, c10::Error);
    EXPECT_TRUE(MpiContext::Exists());  // the failed second one did not release the first
  }
  EXPECT_FALSE(MpiContext::Exists());
  int finalized = 0;
  MPI_Finalized(&finalized);
  EXPECT_TRUE(finalized);
  EXPECT_THROW(MpiContext again, c10::Error);  // MPI cannot come back after MPI_Finalize
  EXPECT_FALSE(MpiContext::Exists());
}

}  // namespace
}  // namespace psaq::dist
