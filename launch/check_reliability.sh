#!/usr/bin/env bash
# Reliability checks, run by .ci/run after launch/test.sh (docs/reliability.md, "Sanitizers" and
# "Fuzzing"). One extra build directory, configured with clang-14, ASan + UBSan and the libFuzzer
# targets (-DPSAQ_SANITIZE=address,undefined -DPSAQ_FUZZ=ON, no CUDA), where it
#   1. builds only what the checks below need (the libraries, the unit and MPI test executables,
#      the fuzz targets and their replays; not the psaq binary's CLI tests) and runs under the
#      sanitizers every test labelled unit or mpi: the unit tests of every library, the MPI tests
#      on 2 and 3 ranks (the sanitizer options are exported to the ranks) and the fuzz replays.
#      Left out: the CLI and Slurm tests (shell scripts running the psaq binary: minutes
#      uninstrumented already, and their binaries would add to the build) and the GPU tests (no
#      GPU in CI);
#   2. fuzzes each target of tests/fuzz from its checked-in corpus: PSAQ_FUZZ_RUNS inputs
#      (default 10,000) from seed PSAQ_FUZZ_SEED (default 1), at most PSAQ_FUZZ_SECONDS (60).
#      A crash, timeout (> 20 s on one input) or out-of-memory fails the step; the input
#      is printed to the log (base64) and kept under <build dir>/fuzz-findings/.
# Time on the 2-core dev machine (shared with other builds): build 12 min 40 s with a partly warm
# ccache (10 min 7 s cold on a quiet machine before the detection code; 42 min cold with four
# other builds running), the 32 tests 6 min 20 s, fuzzing 6 min as 60 s runs (1 min as seeded 10,000-input runs). Budget about 30 min on a fresh
# 2-core CI machine, on top of launch/test.sh (docs/reliability.md, "In CI").
#
#   launch/check_reliability.sh            all of it (exit status non-zero on any failure)
# Environment:
#   PSAQ_SKIP_RELIABILITY=1      skip the whole step (for local runs of .ci/run)
#   PSAQ_FUZZ_SECONDS=N          seconds per fuzz target at most (default 60; 0 skips fuzzing)
#   PSAQ_FUZZ_RUNS=N, PSAQ_FUZZ_SEED=S   inputs per target (default 10000; -1: until the time
#                                ends) and libFuzzer's seed (default 1; 0: random)
#   PSAQ_RELIABILITY_BUILD_DIR   the build directory (default <repo>/build-reliability)
#   PSAQ_SKIP_APT, PSAQ_WERROR, PSAQ_CMAKE_ARGS, CMAKE_PREFIX_PATH   as for launch/setup.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

if [ "${PSAQ_SKIP_RELIABILITY:-0}" = "1" ]; then
  psaq_log "reliability checks skipped (PSAQ_SKIP_RELIABILITY=1)"
  exit 0
fi

FUZZ_SECONDS="${PSAQ_FUZZ_SECONDS:-60}"
# A seeded run of a fixed number of inputs: CI replays exactly the inputs checked here (or a
# prefix of them when PSAQ_FUZZ_SECONDS runs out first), so a CI result does not depend on luck;
# longer, randomly seeded runs are for exploring (docs/reliability.md, "Longer runs").
FUZZ_SEED="${PSAQ_FUZZ_SEED:-1}"
FUZZ_RUNS="${PSAQ_FUZZ_RUNS:-10000}"
# One fuzz target per folder of tests/fuzz/corpus/ (tests/fuzz/CMakeLists.txt builds <name>_fuzz).
mapfile -t FUZZ_TARGETS < <(cd "$PSAQ_ROOT/tests/fuzz/corpus" && ls -d -- */ | tr -d /)

psaq_install_packages "${PSAQ_PACKAGES[@]}" "${PSAQ_RELIABILITY_PACKAGES[@]}" python3-venv
psaq_python_oracles  # the model tests compare with pycocotools
export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer

PSAQ_BUILD_DIR="${PSAQ_RELIABILITY_BUILD_DIR:-$PSAQ_ROOT/build-reliability}"
PSAQ_CMAKE_ARGS="${PSAQ_CMAKE_ARGS:-} -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14
  -DPSAQ_SANITIZE=address,undefined -DPSAQ_FUZZ=ON
  -DPSAQ_WITH_CUDA=OFF -DPSAQ_BUILD_CUDA_KERNELS=OFF -DPSAQ_WITH_NCCL=OFF"
fuzz_binaries=()
for t in "${FUZZ_TARGETS[@]}"; do fuzz_binaries+=("${t}_fuzz"); done
start=$SECONDS
# psaq_unit_mpi_tests: every executable behind a test labelled unit or mpi (tests/CMakeLists.txt).
psaq_build "${fuzz_binaries[@]}" psaq_unit_mpi_tests
psaq_log_elapsed "sanitizer build" $start

failed=0
start=$SECONDS
psaq_log "running the unit and MPI tests under ASan+UBSan"
(cd "$PSAQ_BUILD_DIR" && ctest --output-on-failure --timeout 1200 -L '^(unit|mpi)$') || failed=1
psaq_log_elapsed "sanitizer tests" $start

# The options CTest gives the tests (cmake/PsaqSanitize.cmake), for the fuzzers.
supp="$PSAQ_ROOT/tests/sanitizers"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export OMP_NUM_THREADS=1
findings="$PSAQ_BUILD_DIR/fuzz-findings"
if [ "$FUZZ_SECONDS" -gt 0 ]; then
  mkdir -p "$findings"
  for t in "${FUZZ_TARGETS[@]}"; do
    work="$PSAQ_BUILD_DIR/fuzz-work/$t"
    log="$PSAQ_BUILD_DIR/fuzz-work/$t.log"
    rm -rf "$work" && mkdir -p "$work"
    # gflags prints every refused value of the flagfile target: keep its stderr out of the log
    # (libFuzzer's own reports and the sanitizers' still reach it).
    quiet=()
    if [ "$t" = flagfile ]; then quiet=(-close_fd_mask=2); fi
    psaq_log "fuzzing $t for ${FUZZ_SECONDS} s"
    if "$PSAQ_BUILD_DIR/tests/fuzz/${t}_fuzz" -max_total_time="$FUZZ_SECONDS" -timeout=20 \
        -seed="$FUZZ_SEED" -runs="$FUZZ_RUNS" \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$findings/$t-" "${quiet[@]}" \
        "$work" "$PSAQ_ROOT/tests/fuzz/corpus/$t" >"$log" 2>&1; then
      grep -E "^(Done|stat::number_of_executed_units|stat::new_units_added)" "$log" >&2 || true
    else
      failed=1
      psaq_log "fuzz target $t FAILED; its report:"
      tail -n 80 "$log" >&2
      for f in "$findings/$t-"*; do
        [ -f "$f" ] || continue
        psaq_log "input $f ($(stat -c %s "$f") bytes), base64 (decode with base64 -d):"
        head -c 65536 "$f" | base64 >&2
      done
      psaq_log "replay with: $PSAQ_BUILD_DIR/tests/fuzz/${t}_fuzz_replay FILE; keep it in tests/fuzz/regressions/$t/ with the fix"
    fi
  done
fi

if [ "$failed" -ne 0 ]; then
  psaq_log "reliability checks FAILED"
  exit 1
fi
psaq_log "reliability checks passed"
