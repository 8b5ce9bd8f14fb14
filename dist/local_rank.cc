#include "dist/local_rank.h"

#include <c10/util/Exception.h>

#include <cerrno>
#include <cstdlib>
#include <limits>
#include <stdexcept>

#include "dist/check.h"

namespace psaq::dist {
namespace {

std::optional<std::string> Lookup(const std::function<const char*(const char*)>& lookup,
                                  const char* name) {
  const char* value = lookup(name);
  if (value == nullptr || value[0] == '\0') return std::nullopt;
  return std::string(value);
}

// Parses a set launcher variable as an integer >= 0; `name` is for the message.
std::optional<int> ParseCount(const std::optional<std::string>& text, const char* name) {
  if (!text) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const long value = std::strtol(text->c_str(), &end, 10);
  if (errno != 0 || end == text->c_str() || *end != '\0' || value < 0 ||
      value > std::numeric_limits<int>::max()) {
    throw std::invalid_argument(std::string(name) + "='" + *text +
                                "' is not a non-negative integer");
  }
  return static_cast<int>(value);
}

}  // namespace

LaunchEnv LaunchEnvFromLookup(const std::function<const char*(const char*)>& lookup) {
  LaunchEnv env;
  env.ompi_comm_world_local_rank = Lookup(lookup, "OMPI_COMM_WORLD_LOCAL_RANK");
  env.ompi_comm_world_size = Lookup(lookup, "OMPI_COMM_WORLD_SIZE");
  env.slurm_localid = Lookup(lookup, "SLURM_LOCALID");
  env.slurm_ntasks = Lookup(lookup, "SLURM_NTASKS");
  env.slurm_procid = Lookup(lookup, "SLURM_PROCID");
  return env;
}

std::optional<int> LocalRankFromEnv(const LaunchEnv& env) {
  if (auto r = ParseCount(env.ompi_comm_world_local_rank, "OMPI_COMM_WORLD_LOCAL_RANK")) return r;
  return ParseCount(env.slurm_localid, "SLURM_LOCALID");
}

int LocalRankFromMpi(MPI_Comm comm) {
  int world_rank = 0;
  PSAQ_MPI_CHECK(MPI_Comm_rank(comm, &world_rank));
  MPI_Comm node = MPI_COMM_NULL;
  PSAQ_MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, world_rank, MPI_INFO_NULL, &node));
  int local_rank = 0;
  PSAQ_MPI_CHECK(MPI_Comm_rank(node, &local_rank));
  PSAQ_MPI_CHECK(MPI_Comm_free(&node));
  return local_rank;
}

int ResolveLocalRank(const LaunchEnv& env, MPI_Comm comm) {
  if (auto r = LocalRankFromEnv(env)) return *r;
  return LocalRankFromMpi(comm);
}

int SelectDevice(int local_rank, int device_count) {
  TORCH_CHECK(local_rank >= 0, "SelectDevice: local_rank must be >= 0, got ", local_rank);
  TORCH_CHECK(device_count >= 1, "SelectDevice: no CUDA device visible (device_count ",
              device_count, ")");
  return device_count == 1 ? 0 : local_rank % device_count;
}

void CheckSlurmWorldSize(int world_size, int rank, const LaunchEnv& env) {
  if (env.ompi_comm_world_size) return;  // mpirun's world is authoritative (see the header)
  const std::optional<int> ntasks = ParseCount(env.slurm_ntasks, "SLURM_NTASKS");
  const std::optional<int> procid = ParseCount(env.slurm_procid, "SLURM_PROCID");
  std::string mismatch;
  if (ntasks && *ntasks != world_size) {
    mismatch = "SLURM_NTASKS=" + std::to_string(*ntasks) + " but the MPI world has " +
               std::to_string(world_size) + " rank(s)";
  } else if (procid && *procid != rank) {
    mismatch =
        "SLURM_PROCID=" + std::to_string(*procid) + " but the MPI rank is " + std::to_string(rank);
  }
  if (mismatch.empty()) return;
  const std::string n = ntasks ? std::to_string(*ntasks) : "N";
  throw std::runtime_error(
      mismatch +
      ". Slurm started tasks that MPI did not join into one job: a plain `srun` "
      "without an MPI plugin starts " +
      n +
      " independent one-rank jobs that would each do "
      "all the work. Launch with `srun --mpi=pmix ...` (see `srun --mpi=list`), or run "
      "`mpirun -np " +
      n + " ...` inside the allocation (salloc/sbatch).");
}

}  // namespace psaq::dist
