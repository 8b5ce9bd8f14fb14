#!/usr/bin/env bash
# The output directory is owned by one job and holds only what psaq wrote (issue 18's data-loss
# cases, with the real binary):
#   lock       job A (W8) is writing a directory; job B (W4, mpirun -np 2) on the same directory
#              fails before any work, naming A (pid and command); A then finishes, and its W8
#              export and report are what the directory holds;
#   stale      a job killed with SIGKILL leaves its lock file: --resume says so, takes the lock
#              over and finishes;
#   overwrite  --overwrite over a directory holding a user's samples/mydata/x,
#              checkpoint/important.db and report.json is refused, naming them; nothing changes;
#   nested     a run inside a finished run's samples/ is refused, and --overwrite of the outer run
#              does not delete one made there anyway;
#   utf8       a non-UTF-8 --output_dir is refused before any work (it would end up in JSON).
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"
read -r -a MPIRUN <<<"$PSAQ_MPIRUN"
MODEL="$GOLDEN/vit_fmnist.weights.safetensors"
HANG_SECONDS=120
# V1 of a few seconds: long enough to be caught holding its lock.
V1=(--method=v1 --num_samples=4 --samples_per_batch=4 --v1_epochs=1 --v1_iterations=400
    --v1_warmup=2 --checkpoint_every=20 --seed=1)
NOISE=(--method=noise --num_samples=4)

# wait_for NAME PID CONDITION...: polls CONDITION (a command) every 50 ms while PID lives.
wait_for() {
  local name="$1" pid="$2"
  shift 2
  for _ in $(seq $((HANG_SECONDS * 20))); do
    "$@" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  "$@" || { fail "$name: gave up waiting for: $*"; return 1; }
}
holds_lock() { grep -qs "^pid=$2\$" "$1/.psaq.lock"; }
# tree DIR: every file under DIR with its checksum, to compare before and after.
tree() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
# no_work NAME: the job stopped before loading the model (it never logged its samples).
no_work() {
  grep -q "samples for" "$WORK/$1.err" && fail "$1: it started working before refusing"
  return 0
}

# --- lock: two jobs on one directory --------------------------------------------------------
dir="$WORK/shared"
"$PSAQ" quantize --model="$MODEL" "${V1[@]}" --w_bits=8 --output_dir="$dir" \
  >"$WORK/a.out" 2>"$WORK/a.err" &
a=$!
if wait_for a "$a" holds_lock "$dir" "$a"; then
  kill -STOP "$a"  # A holds the lock and stays mid-job while B starts
  run b "${MPIRUN[@]}" -np 2 "$PSAQ" quantize --model="$MODEL" "${NOISE[@]}" --w_bits=4 \
    --output_dir="$dir"
  kill -CONT "$a"
  [ "$RC" -ne 0 ] || fail "b: a second job on a directory in use exited 0"
  expect_in b err "$dir: in use by another psaq job (host $(hostname), pid $a, started "
  expect_in b err "quantize --model=$MODEL --method=v1"
  no_work b
fi
wait "$a"
rc=$?
[ "$rc" -eq 0 ] || { fail "a: the first job exited $rc"; sed 's/^/    /' "$WORK/a.err" >&2; }
expect_in a out "psaq_v1 (W8/A8)"
grep -q '"weight_bits": 8' "$dir/report.json" || fail "a: report.json is not the W8 job's"
grep -q '"w_bits": "8"' "$dir/model.manifest.json" || fail "a: the export is not the W8 job's"
[ -e "$dir/.psaq.lock" ] && fail "a: the lock outlived the job"

# --- stale: a killed job's lock -------------------------------------------------------------
dir="$WORK/killed"
"$PSAQ" quantize --model="$MODEL" "${V1[@]}" --output_dir="$dir" >"$WORK/k.out" 2>"$WORK/k.err" &
k=$!
if wait_for killed "$k" test -e "$dir/checkpoint/state.json"; then
  kill -KILL "$k"
  wait "$k" 2>/dev/null
  holds_lock "$dir" "$k" || fail "killed: no lock file naming the killed job"
  run resume "$PSAQ" quantize --model="$MODEL" "${V1[@]}" --output_dir="$dir" --resume
  [ "$RC" -eq 0 ] || { fail "resume: exited $RC"; sed 's/^/    /' "$WORK/resume.err" >&2; }
  expect_in resume err "$dir/.psaq.lock: taking over the lock of a psaq job that ended without releasing it (host $(hostname), pid $k, "
  expect_in resume out "psaq quantize: complete"
  [ -e "$dir/.psaq.lock" ] && fail "resume: the lock outlived the job"
else
  wait "$k"
fi

# --- overwrite: a user's files ----------------------------------------------------------------
dir="$WORK/user"
mkdir -p "$dir/samples/mydata" "$dir/checkpoint"
echo "my image" >"$dir/samples/mydata/x"
echo "my database" >"$dir/checkpoint/important.db"
echo '{"status": "complete", "accuracy": 0.91}' >"$dir/report.json"
before="$(tree "$dir")"
run overwrite "$PSAQ" quantize --model="$MODEL" "${NOISE[@]}" --output_dir="$dir" --overwrite
[ "$RC" -ne 0 ] || fail "overwrite: exited 0 over a user's files"
expect_in overwrite err "$dir: holds entries psaq did not write: checkpoint/important.db, report.json (not a psaq report), samples/mydata/; overwrite deletes only psaq's own files"
[ "$(psaq_error_lines overwrite | wc -l)" -eq 1 ] || fail "overwrite: not one error line"
[ "$(tree "$dir")" = "$before" ] || fail "overwrite: the user's files changed"
[ -e "$dir/.psaq.lock" ] && fail "overwrite: a refused job left its lock"
no_work overwrite

# --- nested: a run inside a run -----------------------------------------------------------------
run outer "$PSAQ" quantize --model="$MODEL" "${NOISE[@]}" --output_dir="$WORK/outer"
[ "$RC" -eq 0 ] || { fail "outer: exited $RC"; sed 's/^/    /' "$WORK/outer.err" >&2; }
run inner "$PSAQ" quantize --model="$MODEL" "${NOISE[@]}" --output_dir="$WORK/outer/samples/x"
[ "$RC" -ne 0 ] || fail "inner: a run inside a finished run's samples/ exited 0"
expect_in inner err "$WORK/outer/samples/x: is inside the psaq run directory $WORK/outer (it holds report.json)"
[ -e "$WORK/outer/samples/x" ] && fail "inner: the refused run created its directory"
mkdir -p "$WORK/outer/samples/x" && echo data >"$WORK/outer/samples/x/keep"
run outer_again "$PSAQ" quantize --model="$MODEL" "${NOISE[@]}" --output_dir="$WORK/outer" \
  --overwrite
[ "$RC" -ne 0 ] || fail "outer_again: --overwrite deleted a directory inside the run"
expect_in outer_again err "holds entries psaq did not write: samples/x/;"
[ -e "$WORK/outer/samples/x/keep" ] || fail "outer_again: samples/x/keep is gone"

# --- utf8: a name JSON cannot hold ----------------------------------------------------------------
bad="$WORK/run-"$'\xff'
run utf8 "$PSAQ" quantize --model="$MODEL" "${NOISE[@]}" --output_dir="$bad"
[ "$RC" -ne 0 ] || fail "utf8: a non-UTF-8 --output_dir exited 0"
expect_in utf8 err "QuantizeJobOptions.output_dir is not valid UTF-8"
expect_in utf8 err "$WORK/run-\\xff'"
[ -e "$bad" ] && fail "utf8: the refused run created its directory"
no_work utf8
finish
