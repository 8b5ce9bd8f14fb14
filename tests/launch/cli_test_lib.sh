# Shared by the cli_*_test.sh scripts (sourced). Environment, as CTest sets it
# (tests/launch/CMakeLists.txt):
#   PSAQ             the psaq binary
#   PSAQ_SOURCE_DIR  the repository root (golden fixtures under tests/data/golden)
#   PSAQ_MPIRUN      mpirun with its flags ("mpirun --allow-run-as-root --oversubscribe")
set -uo pipefail

: "${PSAQ:?set PSAQ to the psaq binary}"
: "${PSAQ_SOURCE_DIR:?set PSAQ_SOURCE_DIR to the repository root}"
PSAQ_MPIRUN="${PSAQ_MPIRUN:-mpirun}"
GOLDEN="$PSAQ_SOURCE_DIR/tests/data/golden"
# Seconds any one command may take before the test calls it a hang.
HANG_SECONDS=60

WORK="$(mktemp -d /tmp/psaq_cli_test.XXXXXX)"
# PSAQ_CLI_KEEP=1 keeps the outputs for a look after a failure.
if [ "${PSAQ_CLI_KEEP:-0}" = 1 ]; then echo "outputs in $WORK" >&2; else trap 'rm -rf "$WORK"' EXIT; fi
FAILURES=0

fail() {
  echo "FAIL: $*" >&2
  FAILURES=$((FAILURES + 1))
}

# run NAME CMD...: runs CMD under `timeout`, stdout to $WORK/NAME.out, stderr to $WORK/NAME.err,
# status in RC. A timeout is a failure (a hang).
run() {
  local name="$1"
  shift
  timeout "$HANG_SECONDS" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
  RC=$?
  if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then
    fail "$name: no result after ${HANG_SECONDS}s (hang): $*"
  fi
}

# expect_in NAME FILE-SUFFIX TEXT: $WORK/NAME.FILE-SUFFIX contains TEXT (fixed string).
expect_in() {
  if ! grep -qF -- "$3" "$WORK/$1.$2"; then
    fail "$1: '$3' not in its std$2:"
    sed 's/^/    /' "$WORK/$1.$2" >&2
  fi
}

# psaq_error_lines NAME: psaq's own error lines in $WORK/NAME.err ("psaq <sub>: error: ..." or
# "[rank r/n] error: ..."), not mpirun's banners.
psaq_error_lines() {
  grep -E '^(\[rank [0-9]+/[0-9]+\] )?(psaq [a-z-]+: )?error: ' "$WORK/$1.err"
}

finish() {
  if [ "$FAILURES" -gt 0 ]; then
    echo "$FAILURES check(s) failed" >&2
    exit 1
  fi
  echo "all checks passed"
  exit 0
}
