#!/usr/bin/env bash
# Fixture setup of the Slurm tests: `cluster/local_slurm.sh start` (run by the library) brings
# up munged, slurmctld and slurmd with the node idle; starting again changes nothing.
# shellcheck source=tests/cluster/slurm_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/slurm_test_lib.sh" slurm_start
before="$("$LOCAL_SLURM" status)"
"$LOCAL_SLURM" start
expect_eq "status after a second start" "$("$LOCAL_SLURM" status)" "$before"
grep -q "^node .*: idle$" <<<"$before" || fail "node not idle: $before"
note "PASS: $(tr '\n' ' ' <<<"$before")"
