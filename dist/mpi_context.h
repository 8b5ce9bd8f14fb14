// The MPI environment of one process, as an RAII object.
//
//   int main(int argc, char** argv) {
//     google::InitGoogleLogging(argv[0]);
//     psaq::dist::MpiContext mpi(&argc, &argv);   // MPI_Init_thread + abort-on-fatal
//     ...                                         // everything that uses MPI lives in here
//   }                                             // MPI_Finalize
//
// At most one MpiContext exists at a time in a process, and MPI cannot be initialised again
// after it has been finalised, so in practice there is one per process, owned by main.
// A program started without mpirun (or srun --mpi=pmix) runs as an MPI singleton: rank 0 of a
// world of size 1. Everything in dist/ works in that case.
//
// Threads: psaq calls MPI from the main thread only (LibTorch's worker threads never do), so
// the default request is MPI_THREAD_FUNNELED. Request kSerialized if several threads take turns
// calling MPI.
#pragma once

#include <mpi.h>

namespace psaq::dist {

enum class MpiThreadLevel { kFunneled, kSerialized };

struct MpiContextOptions {
  // The thread support requested from MPI_Init_thread. Default kFunneled (see above). The
  // constructor fails (TORCH_CHECK) when MPI provides less.
  MpiThreadLevel thread_level = MpiThreadLevel::kFunneled;
  // Install the glog failure function that turns any LOG(FATAL)/CHECK failure on any rank into
  // MPI_Abort (dist/fatal.h), so peers never hang in a collective. Default true; turn off only
  // in a program that installs its own.
  bool install_abort_on_fatal = true;
};

class MpiContext {
 public:
  // Initialises MPI with `argc`/`argv` (may be null). If MPI is already initialised (e.g. by a
  // test main or a host application), the context adopts it and will not finalise it.
  // Throws (TORCH_CHECK) if another MpiContext is alive, if MPI was already finalised, or if the
  // provided thread level is below the requested one (only checked when this context initialised
  // MPI).
  MpiContext(int* argc, char*** argv, const MpiContextOptions& options = {});
  explicit MpiContext(const MpiContextOptions& options = {});

  // Collective when this context initialised MPI: calls MPI_Finalize, which waits for every rank.
  // Every communicator built on MPI must be destroyed before.
  ~MpiContext();

  MpiContext(const MpiContext&) = delete;
  MpiContext& operator=(const MpiContext&) = delete;

  // Rank and size in MPI_COMM_WORLD.
  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }
  // True when this context called MPI_Init_thread (and will call MPI_Finalize).
  bool owns_mpi() const { return owns_mpi_; }
  // The thread level MPI reports (MPI_THREAD_SINGLE ... MPI_THREAD_MULTIPLE).
  int provided_thread_level() const { return provided_; }

  // True while an MpiContext is alive in this process.
  static bool Exists();

 private:
  int rank_ = 0;
  int size_ = 1;
  int provided_ = MPI_THREAD_SINGLE;
  bool owns_mpi_ = false;
};

}  // namespace psaq::dist
