#!/usr/bin/env bash
# A scaling study (the study file: launch/study/study_file.h; docs/scaling.md): its cells run as
# Slurm job arrays or locally, then are gathered into a CSV and a plot.
#
#   cluster/study.sh plan    STUDY                  list the cells and their state
#   cluster/study.sh submit  STUDY [SBATCH_OPT...]  one job array per rank count over the cells
#                                                   not finished (cluster/study.sbatch)
#   cluster/study.sh run     STUDY                  run the cells not finished here, one after the
#                                                   other, with mpirun (exit 1 if any failed)
#   cluster/study.sh collect STUDY                  <output_dir>/study.csv and study.png
#
# Every command first writes <output_dir>/plan.tsv (psaq study --action=plan): one line per cell
# with its state and command line. Resubmitting or rerunning the same study skips finished cells
# (report.json "complete", with the top-1 when it evaluates) and reruns the others with --resume:
# a preempted or killed cell continues from its checkpoint, a failed one starts again. Do not
# submit again while an earlier submission's tasks are still queued: a cell would run twice (the
# second run is refused by psaq's lock on the cell's directory, or as already finished).
# Cell logs: <output_dir>/logs/cell<index>-job<array job id>.out (submit) or <cell name>.log (run).
#
# Environment: PSAQ (the psaq binary; default build/launch/psaq of this checkout), PSAQ_MPIRUN
# (run: the mpirun command, default "mpirun --oversubscribe", + --allow-run-as-root as root).
# On a node with fewer CPUs than a cell's ranks, pass --overcommit to submit (Slurm then
# allocates one CPU per task only nominally; the ranks share the cores).
set -euo pipefail
CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$CLUSTER_DIR")"
PSAQ="${PSAQ:-$ROOT/build/launch/psaq}"

usage() { echo "usage: $0 plan|submit|run|collect STUDY [SBATCH_OPTIONS...]" >&2; exit 2; }
[ $# -ge 2 ] || usage
action="$1" study="$2"
shift 2
[ -x "$PSAQ" ] || { echo "study.sh: psaq binary $PSAQ not found (set PSAQ)" >&2; exit 1; }

# plan: prints psaq's table; sets PLAN (the plan file) and OUT (the study's output directory).
plan() {
  local text err
  err="$(mktemp)"
  text="$("$PSAQ" study --action=plan --study="$study" 2>"$err")" || {
    grep -v '^I[0-9]' "$err" >&2  # psaq's reason, without its start-up log lines
    rm -f "$err"
    exit 1
  }
  rm -f "$err"
  echo "$text"
  PLAN="$(sed -n 's/.*; plan: //p' <<<"$text")"
  OUT="$(dirname "$PLAN")"
  mkdir -p "$OUT/logs"
}

# pending_lines: the plan's cells that are not finished, one tab-separated line each.
pending_lines() { awk -F'\t' '!/^#/ && $4 != "finished"' "$PLAN"; }

case "$action" in
  plan) plan ;;
  submit)
    plan
    # One array per rank count: an array's tasks share one resource request (--ntasks).
    for ranks in $(pending_lines | cut -f2 | sort -n -u); do
      ids="$(pending_lines | awk -F'\t' -v r="$ranks" '$2 == r { print $1 }' | paste -sd,)"
      job="$(sbatch --parsable --array="$ids" --ntasks="$ranks" \
        --output="$OUT/logs/cell%a-job%A.out" "$@" "$CLUSTER_DIR/study.sbatch" "$CLUSTER_DIR" \
        "$PSAQ" "$PLAN")"
      echo "study.sh: submitted job ${job%%;*}: cells $ids on $ranks rank(s)"
    done
    ;;
  run)
    plan
    mpirun=(${PSAQ_MPIRUN:-mpirun --oversubscribe})
    if [ -z "${PSAQ_MPIRUN:-}" ] && [ "$(id -u)" = 0 ]; then mpirun+=(--allow-run-as-root); fi
    failed=0
    while IFS=$'\t' read -r -a f; do
      echo "study.sh: cell ${f[0]} ${f[2]} on ${f[1]} rank(s)"
      "${mpirun[@]}" -np "${f[1]}" "$PSAQ" "${f[@]:4}" </dev/null >"$OUT/logs/${f[2]}.log" 2>&1 || {
        echo "study.sh: cell ${f[2]} failed; see $OUT/logs/${f[2]}.log" >&2
        failed=$((failed + 1))
      }
    done < <(pending_lines)
    [ "$failed" = 0 ] || { echo "study.sh: $failed cell(s) failed" >&2; exit 1; }
    ;;
  collect)
    plan >/dev/null
    "$PSAQ" study --action=collect --study="$study" 2>/dev/null
    /usr/bin/python3 "$ROOT/launch/study/study_plot.py" "$OUT/study.csv" "$OUT/study.png"
    echo "study.sh: wrote $OUT/study.csv and $OUT/study.png"
    ;;
  *) usage ;;
esac
