#!/bin/bash
# Stand-in for a resumable psaq rank in the requeue tests, started on every task by srun.
#   preemptible_payload.sh <work dir> <probe> <expected ranks>
# First run (SLURM_RESTART_COUNT unset or 0): writes <work dir>/started.<rank>, then waits for
# SIGUSR1 (at most 100 s); on it writes <work dir>/checkpoint.<rank> and exits 0. Never
# signalled: exits 1.
# Later runs: require checkpoint.<rank> (the "resume"), then exec the MPI probe, which writes
# <work dir>/result.txt.
set -u
dir="$1" probe="$2" ranks="$3"
rank="${SLURM_PROCID:?not started by srun}"
if [ "${SLURM_RESTART_COUNT:-0}" -ge 1 ]; then
  [ -f "$dir/checkpoint.$rank" ] || { echo "rank $rank: resumed without checkpoint.$rank" >&2; exit 1; }
  exec "$probe" "$dir/result.txt" "$ranks"
fi
trap 'echo "run 0" >"$dir/checkpoint.$rank"; exit 0' USR1
touch "$dir/started.$rank"
for _ in $(seq 1 100); do
  sleep 1 &
  wait $!
done
echo "rank $rank: no USR1 within 100 s" >&2
exit 1
