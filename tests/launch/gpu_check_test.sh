#!/usr/bin/env bash
# launch/gpu_check.sh without a GPU (label cli, registered in a CUDA build whose PSAQ_TIMM_PYTHON
# gives a CUDA torch venv: launch/test.sh's LibTorch 2 build): its argument and prerequisite errors
# (exit 2, one line naming the argument, variable or file), then a --no-gpu run that configures and
# builds into PSAQ_GPU_BUILD_DIR and writes the output layout (summary with every GPU step marked
# skipped). CTest passes the test's own build directory: gpu_check.sh's configure line is the one
# launch/test.sh used (same prefix, nvcc, CUDA and NCCL options), so its configure re-runs on that
# cache and its build finds psaq and the two GPU tests built (a scratch directory would rebuild all
# of psaq, about as long as CI's whole build).
# Environment: PSAQ_SOURCE_DIR, PSAQ_TORCH_PYTHON (a python3 with a CUDA build of torch),
# PSAQ_GPU_BUILD_DIR.
set -uo pipefail
: "${PSAQ_SOURCE_DIR:?}" "${PSAQ_TORCH_PYTHON:?}" "${PSAQ_GPU_BUILD_DIR:?}"
CHECK="$PSAQ_SOURCE_DIR/launch/gpu_check.sh"
WORK="$(mktemp -d /tmp/psaq_gpu_check_test.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
FAILURES=0
fail() { echo "FAIL: $*" >&2; FAILURES=$((FAILURES + 1)); }

# expect_error NAME PATTERN CMD...: CMD exits 2 with one stderr line matching PATTERN.
expect_error() {
  local name="$1" pattern="$2" rc
  shift 2
  timeout 120 "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
  rc=$?
  [ $rc -eq 2 ] || fail "$name: exit $rc, expected 2 ($(cat "$WORK/$name.err"))"
  [ "$(wc -l <"$WORK/$name.err")" -eq 1 ] || fail "$name: stderr is not one line: $(cat "$WORK/$name.err")"
  grep -qE -- "$pattern" "$WORK/$name.err" || fail "$name: stderr lacks '$pattern': $(cat "$WORK/$name.err")"
  [ ! -s "$WORK/$name.out" ] || fail "$name: wrote to stdout"
}

expect_error no_out 'missing OUT_DIR' bash "$CHECK" --no-gpu
expect_error two_outs "one OUT_DIR expected, got 'a' and 'b'" bash "$CHECK" a b
expect_error unknown_flag "unknown option '--fast'" bash "$CHECK" --fast "$WORK/o"
expect_error bad_glog "--glog: 'maybe' is not auto, system or debs" bash "$CHECK" --glog=maybe "$WORK/o"
mkdir -p "$WORK/full" && touch "$WORK/full/old.txt"
expect_error nonempty_out "OUT_DIR '$WORK/full' exists and is not empty" bash "$CHECK" --no-gpu "$WORK/full"
PSAQ_TORCH_PYTHON=/nonexistent/python3 expect_error no_python \
  "PSAQ_TORCH_PYTHON: '/nonexistent/python3' is not an executable" bash "$CHECK" --no-gpu "$WORK/o"
printf '#!/bin/sh\nexit 1\n' >"$WORK/notorch" && chmod +x "$WORK/notorch"
PSAQ_TORCH_PYTHON="$WORK/notorch" expect_error no_torch "cannot import torch" bash "$CHECK" --no-gpu "$WORK/o"
mkdir -p "$WORK/nodebs"
PSAQ_DEBS_DIR="$WORK/nodebs" expect_error no_debs \
  "PSAQ_DEBS_DIR: no libgflags-dev_\*.deb in '$WORK/nodebs' \(launch/fetch_gpu_debs.sh" \
  bash "$CHECK" --no-gpu --glog=debs "$WORK/o"
if ! "$PSAQ_TORCH_PYTHON" -c 'import torch, sys; sys.exit(torch.cuda.is_available())'; then
  echo "(a GPU is usable here: the no-GPU error is not checked)"
else
  expect_error no_gpu "no usable GPU .*--no-gpu runs the rest" bash "$CHECK" "$WORK/o"
fi
[ ! -e "$WORK/o" ] || fail "an error run created OUT_DIR"

# The --no-gpu run: configure + build, every GPU step listed as skipped.
if timeout 3000 bash "$CHECK" --no-gpu "$WORK/out" >"$WORK/run.out" 2>&1; then
  for f in summary.txt configure.log build.log; do
    [ -s "$WORK/out/$f" ] || fail "--no-gpu: no $f in OUT_DIR"
  done
  for b in launch/psaq tests/fused_entropy_gpu_test tests/nccl_gpu_test; do
    [ -x "$PSAQ_GPU_BUILD_DIR/$b" ] || fail "--no-gpu: $b not built"
  done
  grep -qE '^configure +ok' "$WORK/out/summary.txt" || fail "summary: configure not ok"
  grep -qE '^build +ok' "$WORK/out/summary.txt" || fail "summary: build not ok"
  for s in fused_entropy_gpu nccl_2ranks v2_2ranks bench_psaq_swin_small_fp32 bench_timm_deit_base_bf16; do
    grep -qE "^$s +skipped \(--no-gpu\)" "$WORK/out/summary.txt" || fail "summary: $s not marked skipped"
  done
  grep -q '^torch/timm: torch 2' "$WORK/out/summary.txt" || fail "summary: no torch version line"
  grep -q 'all steps passed' "$WORK/out/summary.txt" || fail "summary: no final line"
else
  fail "--no-gpu run failed: $(tail -20 "$WORK/run.out")"
fi
cat "$WORK/out/summary.txt" 2>/dev/null
[ $FAILURES -eq 0 ] && echo "gpu_check_test: all checks passed"
exit $((FAILURES > 0))
