// Helpers for the gen MPI tests: a directory shared by all ranks of MPI_COMM_WORLD.
#pragma once

#include <mpi.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace psaq::testing {

// A fresh directory named after rank 0's pid and `tag`, identical on every rank; removed (by
// rank 0, after a barrier) at scope exit. Collective in the constructor and destructor.
class SharedTempDir {
 public:
  explicit SharedTempDir(const std::string& tag) {
    long pid = static_cast<long>(::getpid());
    MPI_Bcast(&pid, 1, MPI_LONG, 0, MPI_COMM_WORLD);
    path_ = (std::filesystem::temp_directory_path() /
             ("psaq_gen_mpi_" + std::to_string(pid) + "_" + tag))
                .string();
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0) {
      std::filesystem::remove_all(path_);
      std::filesystem::create_directories(path_);
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
  ~SharedTempDir() {
    MPI_Barrier(MPI_COMM_WORLD);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    std::error_code ec;
    if (rank == 0) std::filesystem::remove_all(path_, ec);
  }
  SharedTempDir(const SharedTempDir&) = delete;
  SharedTempDir& operator=(const SharedTempDir&) = delete;
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace psaq::testing
