// gtest main for tests run under mpirun: initialises MPI, makes fatal errors abort the job,
// silences the result printer on every rank but 0 (failures are still reported by the rank that
// saw them through the exit code), and combines the ranks' results so every rank exits with the
// same status.
#include <gtest/gtest.h>
#include <mpi.h>

#include "dist/fatal.h"
#include "dist/logging.h"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  google::InitGoogleLogging(argv[0]);
  psaq::dist::InstallAbortOnFatal();
  ::testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    // Keep failure messages from other ranks: replace the default printer with a minimal one.
    struct FailurePrinter : ::testing::EmptyTestEventListener {
      int rank;
      explicit FailurePrinter(int r) : rank(r) {}
      void OnTestPartResult(const ::testing::TestPartResult& r) override {
        if (r.failed()) {
          fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank, r.file_name() ? r.file_name() : "?",
                  r.line_number(), r.summary());
        }
      }
    };
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new FailurePrinter(rank));
  }
  int local = RUN_ALL_TESTS();
  int global = 0;
  MPI_Allreduce(&local, &global, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return global;
}
