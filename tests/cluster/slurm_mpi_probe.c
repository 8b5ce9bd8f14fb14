// The MPI payload of the Slurm tests: proves that the launcher wired every task into one
// MPI_COMM_WORLD. Each rank contributes rank + 1 to an MPI_SUM all-reduce and its rank to an
// MPI_MAX all-reduce; rank 0 writes one line to the result file:
//   ranks=<size> sum=<sum> max_rank=<max> srun_ranks=<0|1>
// srun_ranks=1 when every rank's MPI rank equals its SLURM_PROCID, i.e. srun started the ranks
// itself (srun --mpi=pmix); under mpirun in an allocation the ranks inherit their orted's
// SLURM_PROCID and it is 0.
// and every rank exits 0 only when size == <expected ranks>, sum == size * (size + 1) / 2 and
// max == size - 1. Tasks started without a working PMI each see a world of 1 and fail.
//   slurm_mpi_probe <result file> <expected ranks>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s <result file> <expected ranks>\n", argv[0]);
    return 2;
  }
  const int expected = atoi(argv[2]);
  MPI_Init(&argc, &argv);
  int rank = 0;
  int size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  const long contribution = rank + 1;
  long sum = 0;
  int max_rank = -1;
  MPI_Allreduce(&contribution, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  MPI_Allreduce(&rank, &max_rank, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  const char* procid = getenv("SLURM_PROCID");
  const int mine = procid != NULL && atoi(procid) == rank;
  int srun_ranks = 0;
  MPI_Allreduce(&mine, &srun_ranks, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);

  const long want_sum = (long)size * (size + 1) / 2;
  const int ok = size == expected && sum == want_sum && max_rank == size - 1;
  if (!ok) {
    fprintf(stderr, "rank %d: ranks=%d (want %d) sum=%ld (want %ld) max_rank=%d (want %d)\n", rank,
            size, expected, sum, want_sum, max_rank, size - 1);
  }
  int status = ok ? 0 : 1;
  if (rank == 0) {
    FILE* out = fopen(argv[1], "w");
    if (out == NULL) {
      perror(argv[1]);
      status = 1;
    } else {
      fprintf(out, "ranks=%d sum=%ld max_rank=%d srun_ranks=%d\n", size, sum, max_rank,
              srun_ranks);
      if (fclose(out) != 0) {
        perror(argv[1]);
        status = 1;
      }
    }
  }
  MPI_Finalize();
  return status;
}
