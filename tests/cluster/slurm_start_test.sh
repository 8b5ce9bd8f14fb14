#!/usr/bin/env bash
# Fixture setup of the Slurm tests: `tests/cluster/local_slurm.sh start` (run by the library) brings
# up munged, slurmctld and slurmd with the node idle; starting again changes nothing. Jobs left
# by an interrupted run (the daemons were still up) are cancelled so that they cannot hold the node.
# shellcheck source=tests/cluster/slurm_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/slurm_test_lib.sh" slurm_start
leftover="$(squeue -h -o '%A' | tr '\n' ' ')"
if [ -n "${leftover// /}" ]; then
  note "cancelling jobs left by an earlier run: $leftover"
  # shellcheck disable=SC2086
  scancel $leftover
  for _ in $(seq 1 30); do
    [ -z "$(squeue -h -o '%A')" ] && break
    sleep 1
  done
fi
before="$("$LOCAL_SLURM" status)"
"$LOCAL_SLURM" start
expect_eq "status after a second start" "$("$LOCAL_SLURM" status)" "$before"
grep -q "^node .*: idle$" <<<"$before" || fail "node not idle: $before"
note "PASS: $(tr '\n' ' ' <<<"$before")"
