// Which process on a node this is, which GPU it drives, and whether the launcher and MPI agree.
//
// The library never reads the environment: launch/ takes a snapshot once,
//   const LaunchEnv env = LaunchEnvFromLookup([](const char* n) { return std::getenv(n); });
// and passes it to the pure functions below, which unit tests drive with hand-made snapshots.
//
//   CheckSlurmWorldSize(mpi.size(), mpi.rank(), env);                // before any collective
//   const int local_rank = ResolveLocalRank(env, MPI_COMM_WORLD);
//   const int device = SelectDevice(local_rank, device_count);
#pragma once

#include <mpi.h>

#include <functional>
#include <optional>
#include <string>

namespace psaq::dist {

// The launcher variables psaq looks at, as read from the process environment (unset: nullopt).
// Values are kept as text; the functions below parse and validate them.
struct LaunchEnv {
  // Set by Open MPI's mpirun (ORTE and PRRTE) for every rank it starts.
  std::optional<std::string> ompi_comm_world_local_rank;  // OMPI_COMM_WORLD_LOCAL_RANK
  std::optional<std::string> ompi_comm_world_size;        // OMPI_COMM_WORLD_SIZE
  // Set by Slurm in a job step (srun) and, for the batch step, by sbatch.
  std::optional<std::string> slurm_localid;  // SLURM_LOCALID: task index on this node
  std::optional<std::string> slurm_ntasks;   // SLURM_NTASKS: tasks in the step / allocation
  std::optional<std::string> slurm_procid;   // SLURM_PROCID: global task index
};

// Fills a LaunchEnv by calling `lookup(name)` for each variable above; a null or empty result
// means unset. `lookup` is typically std::getenv.
LaunchEnv LaunchEnvFromLookup(const std::function<const char*(const char*)>& lookup);

// The local rank the launcher announced: OMPI_COMM_WORLD_LOCAL_RANK, else SLURM_LOCALID, else
// nullopt. Open MPI's variable wins because ranks that mpirun starts inside a Slurm allocation
// inherit the batch step's SLURM_LOCALID (0 on every rank).
// Throws std::invalid_argument naming the variable when a set value is not an integer >= 0.
std::optional<int> LocalRankFromEnv(const LaunchEnv& env);

// Collective over `comm`: this process's rank among the ranks of `comm` that share its node
// (MPI_Comm_split_type with MPI_COMM_TYPE_SHARED). Works under any launcher.
int LocalRankFromMpi(MPI_Comm comm);

// LocalRankFromEnv(env), falling back to LocalRankFromMpi(comm) when no variable is set.
// Collective over `comm` when it falls back. The variables are set or unset alike on every rank
// of one launch, so either every rank takes the fallback or none does.
int ResolveLocalRank(const LaunchEnv& env, MPI_Comm comm);

// The CUDA device for a rank: 0 when one device is visible (e.g. Slurm's --gpus-per-task or a
// CUDA_VISIBLE_DEVICES narrowed per rank), else local_rank % device_count. When a node runs
// more ranks than devices, several ranks share one; NCCL refuses that ("Duplicate GPU detected"),
// see dist/nccl_communicator.h. REQUIRES: local_rank >= 0, device_count >= 1 (TORCH_CHECK).
int SelectDevice(int local_rank, int device_count);

// Throws std::runtime_error when the ranks Slurm launched are not the ranks MPI sees: a plain
// `srun ./prog` on a Slurm without a default MPI plugin starts SLURM_NTASKS independent
// one-rank MPI jobs (each a singleton), which would silently repeat the same work N times.
// Checks SLURM_NTASKS == world_size and SLURM_PROCID == rank when those are set. Skipped when
// Open MPI's mpirun started this process (OMPI_COMM_WORLD_SIZE set): mpirun inside an allocation
// legitimately runs any number of ranks, which inherit the batch step's SLURM_* values.
// The message says how to fix it: `srun --mpi=pmix ...`, or `mpirun -np N ...` in the allocation.
void CheckSlurmWorldSize(int world_size, int rank, const LaunchEnv& env);

}  // namespace psaq::dist
