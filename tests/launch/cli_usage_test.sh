#!/usr/bin/env bash
# Usage errors on one rank: each is one line "psaq <sub>: error: ..." and status 2 (bad values,
# types and choices, another subcommand's flag in a --flagfile, flagfiles that include themselves,
# are devices or are too large, bad combinations, missing required flags, stray arguments); a
# runtime error (a missing dataset) is one line and status 1.
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"

MODEL="$GOLDEN/vit_fmnist.weights.safetensors"

# usage_error NAME EXPECTED-TEXT ARGS...
usage_error() {
  local name="$1" text="$2"
  shift 2
  run "$name" "$PSAQ" "$@"
  [ "$RC" -eq 2 ] || fail "$name: exit status $RC, expected 2"
  [ "$(wc -l <"$WORK/$name.err")" -eq 1 ] || fail "$name: stderr is not exactly one line"
  expect_in "$name" err "$text"
}

usage_error bad_type "illegal value 'many'" eval --model="$MODEL" --dataset=fashion_mnist --max_images=many
usage_error bad_choice "--on_bad_image must be one of fail|skip, got 'ignore'" \
  eval --model="$MODEL" --dataset=fashion_mnist --on_bad_image=ignore
printf -- '--model=%s\n--dataset=fashion_mnist\n--file=x\n' "$MODEL" >"$WORK/flags.txt"
usage_error foreign_in_flagfile "--file is not a flag of 'psaq eval'" eval --flagfile="$WORK/flags.txt"
usage_error missing_flagfile "$WORK/none.txt" eval --flagfile="$WORK/none.txt"
# Flagfiles gflags cannot survive are refused before it reads them (a self-inclusion used to
# overflow the stack, /dev/zero to grow memory for 40 s and abort).
printf -- '--model=%s\n--flagfile=%s\n' "$MODEL" "$WORK/loop_b.txt" >"$WORK/loop_a.txt"
printf -- '--flagfile=%s\n' "$WORK/loop_a.txt" >"$WORK/loop_b.txt"
usage_error flagfile_cycle "--flagfile=$WORK/loop_a.txt, in $WORK/loop_b.txt: includes itself" \
  eval --dataset=fashion_mnist --flagfile="$WORK/loop_a.txt"
usage_error flagfile_device "--flagfile=/dev/zero: not a regular file" eval --flagfile=/dev/zero
head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' '#' >"$WORK/big_flags.txt"
usage_error flagfile_size "more than the 1.0 MiB a flagfile may hold" \
  inspect --flagfile="$WORK/big_flags.txt"
usage_error combination "--split applies to --dataset=fashion_mnist only" \
  eval --model="$MODEL" --dataset="$WORK" --split=train
usage_error missing_required "--model is required" eval --dataset=fashion_mnist
usage_error stray_argument "unexpected argument 'extra'" inspect --file=x extra
usage_error log_dir "--log_dir=$WORK/none is not a directory" inspect --file=x --log_dir="$WORK/none"

# A flagfile with this subcommand's flags works.
printf -- '--file=%s\n' "$MODEL" >"$WORK/inspect_flags.txt"
run flagfile_ok "$PSAQ" inspect --flagfile="$WORK/inspect_flags.txt"
[ "$RC" -eq 0 ] || fail "inspect --flagfile exited $RC"
expect_in flagfile_ok out "parameters    19,658"

run missing_dataset "$PSAQ" eval --model="$MODEL" --dataset="$WORK/no_such_dir"
[ "$RC" -eq 1 ] || fail "missing dataset: exit status $RC, expected 1"
[ "$(psaq_error_lines missing_dataset | wc -l)" -eq 1 ] || fail "missing dataset: not one error line"
expect_in missing_dataset err "$WORK/no_such_dir"
# --device=cuda on a CPU-only build: one line saying so (on a CUDA build the run simply works).
if "$PSAQ" --version | grep -q "CPU only"; then
  run cuda "$PSAQ" eval --model="$MODEL" --dataset=fashion_mnist --max_images=1 --device=cuda
  [ "$RC" -eq 1 ] || fail "--device=cuda on a CPU-only build: exit status $RC, expected 1"
  [ "$(psaq_error_lines cuda | wc -l)" -eq 1 ] || fail "--device=cuda: not one error line"
  expect_in cuda err "CPU-only LibTorch"
fi
finish
