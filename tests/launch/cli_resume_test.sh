#!/usr/bin/env bash
# Interrupted psaq quantize runs under mpirun -np 2 resume to exactly the result of an
# uninterrupted one (samples and export, bit for bit):
#   usr1   SIGUSR1 to mpirun (forwarded to the ranks; what Slurm's --signal sends): every rank
#          checkpoints, the run exits 75 with report.json "preempted", --resume finishes it;
#   term   SIGTERM to each rank (a scheduler stopping the tasks): the same;
#   kill   SIGKILL to the ranks (a crash, no warning): --resume continues from the last
#          periodic checkpoint.
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"
read -r -a MPIRUN <<<"$PSAQ_MPIRUN"
MODEL="$GOLDEN/vit_fmnist.weights.safetensors"
HANG_SECONDS=120
JOB=(quantize --model="$MODEL" --method=v1 --num_samples=16 --samples_per_batch=4 --v1_epochs=2
     --v1_iterations=150 --v1_warmup=10 --w_bits=4 --a_bits=8 --seed=5 --checkpoint_every=10)

run full "${MPIRUN[@]}" -np 2 "$PSAQ" "${JOB[@]}" --output_dir="$WORK/full"
[ "$RC" -eq 0 ] || { fail "uninterrupted run exited $RC"; sed 's/^/    /' "$WORK/full.err" >&2; finish; }

same_as_full() {
  local dir="$1" f
  for f in model.safetensors samples/shard-0-of-2.safetensors samples/shard-1-of-2.safetensors; do
    "$PSAQ_SAME_TENSORS" "$WORK/full/$f" "$dir/$f" || fail "$(basename "$dir"): $f differs from the uninterrupted run's"
  done
}

# interrupt MODE: starts the job, waits for its first checkpoint, interrupts it, resumes it.
interrupt() {
  local mode="$1" dir="$WORK/$1" pid
  timeout "$HANG_SECONDS" "${MPIRUN[@]}" -np 2 "$PSAQ" "${JOB[@]}" --output_dir="$dir" \
    >"$WORK/$mode.out" 2>"$WORK/$mode.err" &
  pid=$!
  for _ in $(seq 600); do
    [ -e "$dir/checkpoint/state.json" ] && break
    sleep 0.1
  done
  [ -e "$dir/checkpoint/state.json" ] || { fail "$mode: no checkpoint after 60 s"; wait "$pid"; return; }
  case "$mode" in
    # $pid is timeout's; mpirun (which forwards SIGUSR1 to the ranks) is its child.
    usr1) pkill -USR1 -f -- "^[^ ]*mpi(run|exec) .*--output_dir=$dir" ;;
    # The ranks only (their command line starts with the binary), not mpirun or timeout.
    term) pkill -TERM -f -- "^$PSAQ .*--output_dir=$dir" ;;
    kill) pkill -KILL -f -- "^$PSAQ .*--output_dir=$dir" ;;
  esac
  wait "$pid"
  local rc=$?
  if [ "$mode" = kill ]; then
    [ "$rc" -ne 0 ] || fail "kill: the killed run exited 0"
  else
    [ "$rc" -eq 75 ] || { fail "$mode: interrupted run exited $rc, expected 75"; sed 's/^/    /' "$WORK/$mode.err" >&2; }
    grep -q '"status": "preempted"' "$dir/report.json" 2>/dev/null || fail "$mode: report.json is not 'preempted'"
    expect_in "$mode" err "run the same command with --resume"
  fi
  [ -e "$dir/model.safetensors" ] && fail "$mode: an interrupted run left a model"
  # Without --resume the checkpoint is protected.
  run "$mode.norestart" "$PSAQ" "${JOB[@]}" --output_dir="$dir"
  [ "$RC" -ne 0 ] || fail "$mode: a run without --resume replaced the checkpoint"
  run "$mode.resume" "${MPIRUN[@]}" -np 2 "$PSAQ" "${JOB[@]}" --output_dir="$dir" --resume
  [ "$RC" -eq 0 ] || { fail "$mode: resumed run exited $RC"; sed 's/^/    /' "$WORK/$mode.resume.err" >&2; return; }
  expect_in "$mode.resume" out "psaq quantize: complete"
  same_as_full "$dir"
}

interrupt usr1
interrupt term
interrupt kill
finish
