// Process setup shared by every subcommand, and the top-level runner.
//
//   int main(int argc, char** argv) -> ... -> RunSubcommand(sub, options, &argc, &argv)
//     1. glog, then MPI (dist::MpiContext), then ProcessContext: MPI (a singleton world when not
//     started by mpirun/srun), glog, the
//        abort-on-fatal policy, the launcher checks, the local rank and device, the intra-op thread
//        count, the MPI communicator; rank 0 logs the effective configuration once;
//     2. sub.run(process);
//     3. any exception (std::exception, c10::Error) is printed on stderr with the rank prefix
//        (FormatErrorMessage: its first line as the summary; on rank 0 the lines after it, the
//        detail, indented below) and the job is aborted (MPI_Abort), so no rank waits forever
//        for a dead peer. A one-rank run exits with the status instead, without MPI's abort
//        banner.
//
// Logging: glog writes to stderr, unless glog's own --log_dir is given: then each rank writes its
// log files there and rank 0 also logs to stderr. Ranks other than 0 log WARNING and above only
// (library warnings carry the rank, see dist::RankPrefix).
//
// Threads: LibTorch's intra-op threads = min(cores this process may run on, cores of the node /
// ranks on the node), at least 1, unless OMP_NUM_THREADS is set (LibTorch then uses it).
#pragma once

#include <c10/core/Device.h>

#include <memory>
#include <string>

#include "dist/communicator.h"
#include "dist/local_rank.h"
#include "dist/mpi_context.h"
#include "launch/subcommand.h"

namespace psaq::launch {

struct ProcessOptions {
  // Name for glog's log files and messages. Default "psaq".
  std::string program = "psaq";
  // "cpu", "cuda" or "auto" (cuda when LibTorch has CUDA and a GPU is visible). Default "cpu".
  std::string device = "cpu";
  // Printed by rank 0 at start-up under the process summary (EffectiveFlags). Default "".
  std::string configuration;
};

class ProcessContext {
 public:
  // Collective over MPI_COMM_WORLD (node split). `mpi` must outlive the context (RunSubcommand
  // owns both; MPI is finalised after the context is gone, and never while unwinding an error).
  // Throws std::runtime_error for a launcher that started independent singletons
  // (dist::CheckSlurmWorldSize), and for --device=cuda without a CUDA LibTorch or without a
  // visible GPU.
  ProcessContext(dist::MpiContext& mpi, const ProcessOptions& options);
  // Collective: frees the communicators.
  ~ProcessContext();
  ProcessContext(const ProcessContext&) = delete;
  ProcessContext& operator=(const ProcessContext&) = delete;

  int rank() const { return mpi_.rank(); }
  int size() const { return mpi_.size(); }
  bool is_root() const { return mpi_.is_root(); }
  int local_rank() const { return local_rank_; }  // among the ranks of this node
  int local_size() const { return local_size_; }  // ranks on this node
  int intra_op_threads() const { return threads_; }
  c10::Device device() const { return device_; }
  const dist::LaunchEnv& launch_env() const { return env_; }

  // The MPI communicator over every rank (CPU tensors). Always available.
  dist::Communicator& comm() { return *host_comm_; }
  // The communicator for tensors on device(): NCCL when the device is CUDA and psaq was built
  // with NCCL, else comm(). Collective on its first call (NCCL setup): call it on every rank.
  dist::Communicator& device_comm();

 private:
  dist::MpiContext& mpi_;
  dist::LaunchEnv env_;
  int local_rank_ = 0;
  int local_size_ = 1;
  int threads_ = 1;
  c10::Device device_ = c10::Device(c10::kCPU);
  std::unique_ptr<dist::Communicator> host_comm_;
  std::unique_ptr<dist::Communicator> device_comm_;
};

// Runs `sub` in a ProcessContext built from `options` and returns its exit status; on an exception
// prints its message (FormatErrorMessage) and aborts the job (see above). Call after the flags are
// parsed and checked. Subcommands should use the context's communicators rather than their own: a
// communicator destroyed while an error unwinds could wait for peers.
int RunSubcommand(const Subcommand& sub, const ProcessOptions& options, int* argc, char*** argv);

// At most this many lines of an error's detail are printed (a strict weights load lists every
// missing key); the rest are counted.
constexpr size_t kMaxErrorDetailLines = 50;

// An error message as the top-level handler prints it after "error: ": its first line (the
// summary; "unknown error" when empty) and, when `with_detail`, every further line indented by two
// spaces, blank lines at the end dropped, at most kMaxErrorDetailLines of them then
// "  ... (N more lines)". Without detail: the first line only.
std::string FormatErrorMessage(const std::string& text, bool with_detail);

// LibTorch intra-op threads for one rank: min(allowed_cores, node_cores / local_size), at least 1.
// allowed_cores: CPUs this process may run on (its affinity mask: a core or a socket when the
// launcher binds ranks, the job's CPUs under Slurm); node_cores: CPUs online on the node.
int IntraOpThreads(int allowed_cores, int node_cores, int local_size);

// Whether this process is rank 0 of its launch, from the launcher's variables (before MPI starts):
// OMPI_COMM_WORLD_RANK, PMIX_RANK, PMI_RANK, then SLURM_PROCID; true when none is set.
bool LaunchedAsRoot();

}  // namespace psaq::launch
