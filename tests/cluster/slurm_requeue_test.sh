#!/usr/bin/env bash
# Preemption and requeue through cluster/psaq.sbatch, with a real 2-rank MPI job resuming.
#   slurm_requeue_test.sh <slurm_mpi_probe binary> scancel|time_limit
# scancel:     once both ranks run, `scancel --signal=USR1 --batch` (a preemption notice).
# time_limit:  --time=2 --signal=B:USR1@80: Slurm itself warns the batch shell 80 s before the
#              limit (at its first 30-second check after 10 s of run time).
# Both: the batch shell forwards USR1 to the ranks (each writes checkpoint.<rank> and exits),
# records the requeue, requeues; the second run (SLURM_RESTART_COUNT=1) finds the checkpoints
# and runs the MPI probe; the job ends COMPLETED, exit 0:0, Restarts=1.
# shellcheck source=tests/cluster/slurm_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/slurm_test_lib.sh" "slurm_requeue_$2"
probe="$1" mode="$2"
payload=("$PSAQ_ROOT/tests/cluster/preemptible_payload.sh" "$WORK" "$probe" 2)
export PSAQ_JOB_DIR="$WORK" PSAQ_PREEMPT_GRACE=20

# scancel uses --time=10 so that psaq.sbatch's own --signal=B:USR1@300 stays silent.
case "$mode" in
  scancel) limits=(--time=10) ;;
  time_limit) limits=(--time=2 --signal=B:USR1@80) ;;
  *) fail "unknown mode $mode" ;;
esac
job=$(submit --ntasks=2 "${limits[@]}" -D "$WORK" -o "$WORK/job.out" \
  "$PSAQ_ROOT/cluster/psaq.sbatch" "${payload[@]}")
note "submitted job $job (${limits[*]})"
wait_for_files 30 "$job" "$WORK/started.0" "$WORK/started.1"
note "both ranks running"
if [ "$mode" = scancel ]; then
  scancel --signal=USR1 --batch "$job" || fail "scancel --signal=USR1 --batch failed" "$job"
  note "sent USR1 to the batch shell"
fi
wait_for_files 60 "$job" "$WORK/psaq-$job.requeued"
note "requeued; Slurm holds the job for the credential lifetime before it restarts"
wait_for_state "$job" 60 COMPLETED >/dev/null
expect_eq "exit code" "$(job_field "$job" ExitCode)" "0:0" "$job"
expect_eq "restarts" "$(job_field "$job" Restarts)" "1" "$job"
expect_eq "requeue records (run numbers)" "$(cut -d' ' -f1 "$WORK/psaq-$job.requeued" | tr '\n' ' ')" "0 " "$job"
for rank in 0 1; do
  expect_eq "checkpoint of rank $rank" "$(cat "$WORK/checkpoint.$rank" 2>/dev/null)" "run 0" "$job"
done
expect_eq "probe result" "$(cat "$WORK/result.txt" 2>/dev/null)" "ranks=2 sum=3 max_rank=1 srun_ranks=1" "$job"
grep -q "run 1: 2 tasks" "$WORK/job.out" || fail "job output lacks the second run" "$job"
note "PASS: job $job requeued once and COMPLETED: $(cat "$WORK/result.txt")"
