#!/usr/bin/env bash
# The fallback launch path: mpirun inside a 2-task allocation (Open MPI reads the allocation
# from Slurm and starts its daemons with srun). The ranks form one world, but they are not srun
# tasks themselves (srun_ranks=0), which tells this path apart from srun --mpi=pmix.
#   slurm_mpirun_in_allocation_test.sh <slurm_mpi_probe binary>
# shellcheck source=tests/cluster/slurm_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/slurm_test_lib.sh" slurm_mpirun_in_allocation
probe="$1"

root_flag=""
[ "$(id -u)" -ne 0 ] || root_flag="--allow-run-as-root"
job=$(submit --ntasks=2 --time=2 -D "$WORK" -o "$WORK/job.out" \
  --wrap "mpirun $root_flag $probe $WORK/result.txt 2")
note "submitted job $job"
wait_for_state "$job" 90 COMPLETED >/dev/null
expect_eq "exit code" "$(job_field "$job" ExitCode)" "0:0" "$job"
[ -r "$WORK/result.txt" ] || fail "no result file" "$job"
expect_eq "probe result" "$(cat "$WORK/result.txt")" "ranks=2 sum=3 max_rank=1 srun_ranks=0" "$job"
note "PASS: job $job COMPLETED: $(cat "$WORK/result.txt")"
