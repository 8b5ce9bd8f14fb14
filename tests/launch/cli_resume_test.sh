#!/usr/bin/env bash
# Interrupted psaq quantize runs under mpirun -np 2 resume to exactly the result of an
# uninterrupted one (samples and export, bit for bit):
#   usr1   SIGUSR1 to mpirun (forwarded to the ranks; what Slurm's --signal sends): every rank
#          checkpoints, the run exits 75 with report.json "preempted", --resume finishes it;
#   term   SIGTERM to each rank (a scheduler stopping the tasks): the same;
#   kill   SIGKILL to the ranks (a crash, no warning): --resume continues from the last
#          periodic checkpoint; for V1 (checkpoints every 10 steps) and V2 (killed mid-round,
#          resumed from the last round's checkpoint);
#   det    a V2 job on the shipped detector stopped by SIGTERM after its warm-up, resumed.
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"
read -r -a MPIRUN <<<"$PSAQ_MPIRUN"
MODEL="$GOLDEN/vit_fmnist.weights.safetensors"
HANG_SECONDS=120
JOB=(quantize --model="$MODEL" --method=v1 --num_samples=16 --samples_per_batch=4 --v1_epochs=2
     --v1_iterations=150 --v1_warmup=10 --w_bits=4 --a_bits=8 --seed=5 --checkpoint_every=10)

V2_JOB=(quantize --model="$MODEL" --method=v2 --num_samples=16 --samples_per_batch=4 --v2_rounds=6
        --v2_sample_iterations=30 --v2_student_iterations=20 --v2_image_warmup=3 --w_bits=4
        --a_bits=4 --seed=6)

DET_JOB=(quantize --model="$PSAQ_SOURCE_DIR/model/zoo/fmnist_maskrcnn.safetensors" --method=v2
         --num_samples=4 --samples_per_batch=2 --image_size=64 --v2_rounds=3
         --v2_sample_iterations=2 --v2_student_iterations=2 --v2_image_warmup=1
         --v2_warmup_iterations=1 --w_bits=4 --a_bits=8 --seed=7)

# reference NAME: the uninterrupted run of the current JOB into $WORK/NAME.
reference() {
  run "$1" "${MPIRUN[@]}" -np 2 "$PSAQ" "${JOB[@]}" --output_dir="$WORK/$1"
  [ "$RC" -eq 0 ] || { fail "uninterrupted run exited $RC"; sed 's/^/    /' "$WORK/$1.err" >&2; finish; }
  FULL="$WORK/$1"
}

same_as_full() {
  local dir="$1" f
  for f in model.safetensors samples/shard-0-of-2.safetensors samples/shard-1-of-2.safetensors; do
    "$PSAQ_SAME_TENSORS" "$FULL/$f" "$dir/$f" || fail "$(basename "$dir"): $f differs from the uninterrupted run's"
  done
}

# interrupt MODE NAME: starts the job, waits for its first checkpoint, interrupts it, resumes it.
interrupt() {
  local mode="$1" name="$2" dir="$WORK/$2" pid
  timeout "$HANG_SECONDS" "${MPIRUN[@]}" -np 2 "$PSAQ" "${JOB[@]}" --output_dir="$dir" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" &
  pid=$!
  for _ in $(seq 600); do
    [ -e "$dir/checkpoint/state.json" ] && break
    sleep 0.1
  done
  [ -e "$dir/checkpoint/state.json" ] || { fail "$name: no checkpoint after 60 s"; wait "$pid"; return; }
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
    [ "$rc" -eq 75 ] || { fail "$name: interrupted run exited $rc, expected 75"; sed 's/^/    /' "$WORK/$name.err" >&2; }
    grep -q '"status": "preempted"' "$dir/report.json" 2>/dev/null || fail "$name: report.json is not 'preempted'"
    expect_in "$name" err "run the same command with --resume"
  fi
  [ -e "$dir/model.safetensors" ] && fail "$name: an interrupted run left a model"
  # Without --resume the checkpoint is protected.
  run "$name.norestart" "$PSAQ" "${JOB[@]}" --output_dir="$dir"
  [ "$RC" -ne 0 ] || fail "$name: a run without --resume replaced the checkpoint"
  run "$name.resume" "${MPIRUN[@]}" -np 2 "$PSAQ" "${JOB[@]}" --output_dir="$dir" --resume
  [ "$RC" -eq 0 ] || { fail "$name: resumed run exited $RC"; sed 's/^/    /' "$WORK/$name.resume.err" >&2; return; }
  expect_in "$name.resume" out "psaq quantize: complete"
  same_as_full "$dir"
}

reference full_v1
interrupt usr1 usr1
interrupt term term
interrupt kill kill_v1
JOB=("${V2_JOB[@]}")
reference full_v2
interrupt kill kill_v2
JOB=("${DET_JOB[@]}")
reference full_det
interrupt term term_det
finish
