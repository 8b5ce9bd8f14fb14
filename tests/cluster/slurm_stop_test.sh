#!/usr/bin/env bash
# Fixture cleanup of the Slurm tests: `tests/cluster/local_slurm.sh stop` must leave none of its
# daemons running (status exits 3 and names each one "not running").
# shellcheck source=tests/cluster/slurm_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/slurm_test_lib.sh" slurm_stop
"$LOCAL_SLURM" stop
set +e
status="$("$LOCAL_SLURM" status)"
rc=$?
set -e
echo "$status"
expect_eq "status exit code" "$rc" 3
for daemon in munged slurmctld slurmd; do
  grep -qx "$daemon: not running" <<<"$status" || fail "$daemon still running after stop"
done
note "PASS: no daemon left"
