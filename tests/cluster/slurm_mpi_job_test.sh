#!/usr/bin/env bash
# A 2-task batch job of cluster/psaq.sbatch runs the MPI probe through srun --mpi=pmix: the two
# ranks form one world (all-reduce sum 1 + 2 = 3), srun started them (MPI rank == SLURM_PROCID),
# and the job ends COMPLETED with exit code 0:0.
#   slurm_mpi_job_test.sh <slurm_mpi_probe binary>
# shellcheck source=tests/cluster/slurm_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/slurm_test_lib.sh" slurm_mpi_job
probe="$1"

# --time=10: psaq.sbatch asks for USR1 300 s before the limit; a shorter limit would send it at
# once and requeue the job.
job=$(submit --ntasks=2 --time=10 -D "$WORK" -o "$WORK/job.out" \
  "$PSAQ_ROOT/cluster/psaq.sbatch" "$probe" "$WORK/result.txt" 2)
note "submitted job $job"
wait_for_state "$job" 90 COMPLETED >/dev/null
expect_eq "exit code" "$(job_field "$job" ExitCode)" "0:0" "$job"
expect_eq "restarts" "$(job_field "$job" Restarts)" "0" "$job"
[ -r "$WORK/result.txt" ] || fail "no result file" "$job"
expect_eq "probe result" "$(cat "$WORK/result.txt")" "ranks=2 sum=3 max_rank=1 srun_ranks=1" "$job"
note "PASS: job $job COMPLETED: $(cat "$WORK/result.txt")"
