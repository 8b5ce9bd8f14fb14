// MpiContext under mpirun, where the test main has already initialised MPI: the context adopts
// MPI, reports the world, and leaves finalisation to its owner.
#include <c10/util/Exception.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include "dist/mpi_context.h"

namespace psaq::dist {
namespace {

TEST(MpiContextMpiTest, AdoptsAnInitialisedMpiAndDoesNotFinaliseIt) {
  int rank = -1, size = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  ASSERT_GE(size, 2) << "run under mpirun -np 2 or more";
  {
    MpiContext mpi;
    EXPECT_FALSE(mpi.owns_mpi());
    EXPECT_EQ(mpi.rank(), rank);
    EXPECT_EQ(mpi.size(), size);
    EXPECT_EQ(mpi.is_root(), rank == 0);
    int provided = -1;
    MPI_Query_thread(&provided);
    EXPECT_EQ(mpi.provided_thread_level(), provided);
    EXPECT_THROW(MpiContext second, c10::Error);
  }
  int finalized = 1;
  MPI_Finalized(&finalized);
  EXPECT_FALSE(finalized);
  // A new context may be created once the first is gone.
  MpiContext again;
  EXPECT_EQ(again.size(), size);
}

}  // namespace
}  // namespace psaq::dist
