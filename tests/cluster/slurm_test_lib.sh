# shellcheck shell=bash
# Shared by the Slurm tests (sourced, not run). The tests submit real jobs to the private cluster
# of tests/cluster/local_slurm.sh, which the CTest fixture starts (PSAQ_SLURM_DIR comes from CTest).
#   source "$(dirname "${BASH_SOURCE[0]}")/slurm_test_lib.sh" <test name>
# Sets: PSAQ_ROOT (the source tree), WORK (an empty directory for this test's files, kept after
# the run for inspection), SLURM_CONF (exported). Exits 77 (CTest: skipped) where Slurm cannot
# run: not root, or slurm-wlm / munge not installed.
set -euo pipefail

PSAQ_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TEST_NAME="$1"
LOCAL_SLURM="$PSAQ_ROOT/tests/cluster/local_slurm.sh"
T0=$(date +%s)

# Everything diagnostic goes to stderr: helpers run inside $(...) too.
note() { printf '[%s %3ds] %s\n' "$TEST_NAME" $(($(date +%s) - T0)) "$*" >&2; }

# skip_unless_slurm_can_run: exit 77 when this machine cannot host the local cluster.
skip_unless_slurm_can_run() {
  if [ "$(id -u)" -ne 0 ]; then
    note "SKIP: needs root (slurmd launches jobs as their owner); launch/test.sh runs as root"
    exit 77
  fi
  local bin
  for bin in munged slurmctld slurmd sbatch scontrol srun; do
    command -v "$bin" >/dev/null || { note "SKIP: $bin not installed (slurm-wlm, munge)"; exit 77; }
  done
}

skip_unless_slurm_can_run
eval "$("$LOCAL_SLURM" env)"
# The fixture started the cluster; starting again is a no-op, or repairs a stopped daemon.
"$LOCAL_SLURM" start
WORK="$PWD/work/$TEST_NAME"
rm -rf "$WORK"
mkdir -p "$WORK"

# job_field JOB FIELD: one field of `scontrol show job` (JobState, Restarts, ExitCode, ...);
# empty when scontrol fails (the pollers then try again).
job_field() {
  scontrol -o show job "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1 || true
}

# fail MSG [JOB]: report, with the job record, its output and the daemons' log tails; exit 1.
# Inside $(...) it ends the subshell, and `var=$(...)` then ends the test (set -e).
fail() {
  exec >&2
  note "FAIL: $1"
  if [ -n "${2:-}" ]; then
    scontrol show job "$2" || true
  fi
  local f
  for f in "$WORK"/*.out "$WORK"/*.txt "$WORK"/*.requeued; do
    [ -r "$f" ] && { echo "--- $f"; cat "$f"; }
  done
  local dir="${PSAQ_SLURM_DIR:-/tmp/psaq-slurm}"
  for f in "$dir/log/slurmctld.log" "$dir/log/slurmd.log"; do
    [ -r "$f" ] && { echo "--- last lines of $f"; tail -n 25 "$f"; }
  done
  exit 1
}

# submit SBATCH_ARGS...: sbatch, printing the job id; fails the test when sbatch does.
submit() {
  local id
  id="$(sbatch --parsable "$@")" || fail "sbatch $* failed"
  echo "${id%%;*}"
}

# wait_for_state JOB SECONDS STATE...: poll until JobState is one of STATE (then print it), or
# until it is a final state not in the list, or SECONDS pass: then fail.
wait_for_state() {
  local job="$1" limit="$2" state=""
  shift 2
  local deadline=$(($(date +%s) + limit)) want
  while :; do
    state="$(job_field "$job" JobState)"
    for want in "$@"; do
      [ "$state" = "$want" ] && { echo "$state"; return 0; }
    done
    case "$state" in
      COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE)
        fail "job $job ended $state, expected $*" "$job" ;;
    esac
    [ "$(date +%s)" -lt "$deadline" ] || fail "job $job still $state after ${limit}s, expected $*" "$job"
    sleep 1
  done
}

# wait_for_files SECONDS JOB FILE...: poll until every FILE exists.
wait_for_files() {
  local limit="$1" job="$2" f
  shift 2
  local deadline=$(($(date +%s) + limit))
  for f in "$@"; do
    while [ ! -e "$f" ]; do
      [ "$(date +%s)" -lt "$deadline" ] || fail "$f not written within ${limit}s" "$job"
      sleep 0.5
    done
  done
}

# expect_eq WHAT GOT WANT [JOB]
expect_eq() {
  [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'" "${4:-}"
}
