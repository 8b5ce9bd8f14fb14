#include "dist/local_rank.h"

#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <map>
#include <stdexcept>
#include <string>

namespace psaq::dist {
namespace {

// A LaunchEnv built through LaunchEnvFromLookup from a fake environment.
LaunchEnv EnvOf(const std::map<std::string, std::string>& vars) {
  return LaunchEnvFromLookup([&vars](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

// Runs `f` and returns the what() of the std::exception it throws ("" if none).
template <typename F>
std::string ErrorOf(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(LaunchEnvTest, ReadsTheVariablesAndTreatsEmptyAsUnset) {
  const LaunchEnv env = EnvOf({{"OMPI_COMM_WORLD_LOCAL_RANK", "3"},
                               {"OMPI_COMM_WORLD_SIZE", "8"},
                               {"SLURM_LOCALID", ""},
                               {"SLURM_NTASKS", "8"},
                               {"UNRELATED", "x"}});
  EXPECT_EQ(env.ompi_comm_world_local_rank, "3");
  EXPECT_EQ(env.ompi_comm_world_size, "8");
  EXPECT_FALSE(env.slurm_localid.has_value());
  EXPECT_EQ(env.slurm_ntasks, "8");
  EXPECT_FALSE(env.slurm_procid.has_value());
}

TEST(LocalRankTest, OpenMpiVariableWinsOverSlurm) {
  // mpirun inside an sbatch allocation: every rank inherits the batch step's SLURM_LOCALID=0.
  EXPECT_EQ(LocalRankFromEnv(EnvOf({{"OMPI_COMM_WORLD_LOCAL_RANK", "2"}, {"SLURM_LOCALID", "0"}})),
            2);
}

TEST(LocalRankTest, FallsBackToSlurmThenToNothing) {
  EXPECT_EQ(LocalRankFromEnv(EnvOf({{"SLURM_LOCALID", "5"}})), 5);
  EXPECT_FALSE(LocalRankFromEnv(EnvOf({})).has_value());
}

TEST(LocalRankTest, MalformedValuesThrowNamingTheVariable) {
  for (const char* bad : {"abc", "-1", "1x", "99999999999"}) {
    const std::string message = ErrorOf([&] { LocalRankFromEnv(EnvOf({{"SLURM_LOCALID", bad}})); });
    EXPECT_NE(message.find("SLURM_LOCALID"), std::string::npos) << bad << ": " << message;
    EXPECT_NE(message.find(bad), std::string::npos) << message;
  }
  EXPECT_THROW(LocalRankFromEnv(EnvOf({{"OMPI_COMM_WORLD_LOCAL_RANK", "x"}})),
               std::invalid_argument);
}

TEST(SelectDeviceTest, OneVisibleDeviceIsAlwaysZero) {
  for (int local_rank : {0, 1, 5}) EXPECT_EQ(SelectDevice(local_rank, 1), 0);
}

TEST(SelectDeviceTest, SeveralDevicesAreAssignedRoundRobin) {
  EXPECT_EQ(SelectDevice(0, 4), 0);
  EXPECT_EQ(SelectDevice(3, 4), 3);
  EXPECT_EQ(SelectDevice(5, 4), 1);
  EXPECT_EQ(SelectDevice(7, 8), 7);
}

TEST(SelectDeviceTest, NoDeviceOrNegativeRankThrows) {
  EXPECT_THROW(SelectDevice(0, 0), c10::Error);
  EXPECT_THROW(SelectDevice(-1, 2), c10::Error);
}

TEST(CheckSlurmWorldSizeTest, PassesWithoutSlurmOrWhenSlurmAgrees) {
  EXPECT_NO_THROW(CheckSlurmWorldSize(1, 0, EnvOf({})));
  EXPECT_NO_THROW(CheckSlurmWorldSize(4, 2, EnvOf({{"SLURM_NTASKS", "4"}, {"SLURM_PROCID", "2"}})));
}

TEST(CheckSlurmWorldSizeTest, PlainSrunWithoutMpiPluginIsExplained) {
  // `srun -n 4 ./prog` without --mpi=pmix: every task is an MPI singleton.
  const std::string message = ErrorOf([] {
    CheckSlurmWorldSize(1, 0, EnvOf({{"SLURM_NTASKS", "4"}, {"SLURM_PROCID", "2"}}));
  });
  EXPECT_NE(message.find("SLURM_NTASKS=4"), std::string::npos) << message;
  EXPECT_NE(message.find("1 rank"), std::string::npos) << message;
  EXPECT_NE(message.find("srun --mpi=pmix"), std::string::npos) << message;
  EXPECT_NE(message.find("mpirun -np 4"), std::string::npos) << message;
  EXPECT_THROW(CheckSlurmWorldSize(1, 0, EnvOf({{"SLURM_NTASKS", "4"}})), std::runtime_error);
}

TEST(CheckSlurmWorldSizeTest, RankMismatchIsAnErrorToo) {
  const std::string message = ErrorOf([] {
    CheckSlurmWorldSize(4, 0, EnvOf({{"SLURM_NTASKS", "4"}, {"SLURM_PROCID", "3"}}));
  });
  EXPECT_NE(message.find("SLURM_PROCID=3"), std::string::npos) << message;
  EXPECT_NE(message.find("srun --mpi=pmix"), std::string::npos) << message;
}

TEST(CheckSlurmWorldSizeTest, MpirunInsideAnAllocationIsAccepted) {
  // sbatch -n 8, then `mpirun -np 2` in the script: the ranks inherit SLURM_NTASKS=8 and
  // SLURM_PROCID=0, and mpirun's world (OMPI_COMM_WORLD_SIZE) is the one that counts.
  EXPECT_NO_THROW(CheckSlurmWorldSize(
      2, 1, EnvOf({{"SLURM_NTASKS", "8"}, {"SLURM_PROCID", "0"}, {"OMPI_COMM_WORLD_SIZE", "2"}})));
}

TEST(CheckSlurmWorldSizeTest, MalformedSlurmValueThrows) {
  EXPECT_THROW(CheckSlurmWorldSize(2, 0, EnvOf({{"SLURM_NTASKS", "two"}})), std::invalid_argument);
}

}  // namespace
}  // namespace psaq::dist
