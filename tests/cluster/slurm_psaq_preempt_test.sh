#!/usr/bin/env bash
# Preemption of `psaq quantize` under Slurm: a 2-task job of cluster/psaq.sbatch gets USR1 on its
# batch shell (scancel --signal=USR1 --batch, as a preemption hook sends it) once its first
# checkpoint exists; the script forwards it, both ranks checkpoint and exit, the job is requeued,
# the second run resumes (--resume) and the job ends COMPLETED with Restarts=1. Its samples and
# export equal, bit for bit, those of the same job run without interruption (mpirun, 2 ranks).
#   slurm_psaq_preempt_test.sh <psaq binary> <weights file> <same_tensors binary>
# shellcheck source=tests/cluster/slurm_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/slurm_test_lib.sh" slurm_psaq_preempt
psaq="$1" model="$2" same="$3"
export PSAQ_JOB_DIR="$WORK" PSAQ_PREEMPT_GRACE=30
args=(quantize --model="$model" --method=v1 --num_samples=16 --samples_per_batch=4 --v1_epochs=2
      --v1_iterations=150 --v1_warmup=10 --w_bits=4 --a_bits=8 --seed=5 --checkpoint_every=10
      --resume)

root_flag=()
[ "$(id -u)" = 0 ] && root_flag=(--allow-run-as-root)
OMP_NUM_THREADS=1 timeout 100 mpirun "${root_flag[@]}" --oversubscribe -np 2 "$psaq" "${args[@]}" \
  --output_dir="$WORK/reference" >"$WORK/reference.log" 2>&1 ||
  fail "the uninterrupted run failed: $(tail -5 "$WORK/reference.log")"
note "uninterrupted reference written"

job=$(submit --ntasks=2 --time=10 -D "$WORK" -o "$WORK/job.out" \
  "$PSAQ_ROOT/cluster/psaq.sbatch" "$psaq" "${args[@]}" --output_dir="$WORK/run")
note "submitted job $job"
wait_for_files 60 "$job" "$WORK/run/checkpoint/state.json"
scancel --signal=USR1 --batch "$job" || fail "scancel --signal=USR1 --batch failed" "$job"
note "sent USR1 to the batch shell after the first checkpoint"
wait_for_files 60 "$job" "$WORK/psaq-$job.requeued"
note "requeued; the second run resumes after the credential hold"
wait_for_state "$job" 90 COMPLETED >/dev/null
expect_eq "exit code" "$(job_field "$job" ExitCode)" "0:0" "$job"
expect_eq "restarts" "$(job_field "$job" Restarts)" "1" "$job"
grep -q "run the same command with --resume" "$WORK/job.out" ||
  fail "the first run did not stop at a checkpoint" "$job"
grep -q '"status": "complete"' "$WORK/run/report.json" || fail "report status is not complete" "$job"
for f in model.safetensors samples/shard-0-of-2.safetensors samples/shard-1-of-2.safetensors; do
  "$same" "$WORK/reference/$f" "$WORK/run/$f" || fail "$f differs from the uninterrupted run's" "$job"
done
note "PASS: job $job was preempted, requeued once, and resumed to the uninterrupted result"
