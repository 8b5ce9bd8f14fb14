# Sourced by docs/make_results.sh and docs/make_detection_results.sh: how a results script runs one
# psaq job and keeps it. Needs PSAQ (the binary) and OUT (the results directory) set by the caller;
# defines MPIRUN, log and job.
MPIRUN=(mpirun --oversubscribe)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
log() { printf '[results %s] %s\n' "$(date +%T)" "$*" >&2; }

# job DIR NP ARGS...: psaq on NP ranks into DIR unless DIR already holds a finished run: its
# report says complete and, when ARGS ask for an evaluation, holds its result (psaq writes the
# report before it evaluates, so a run stopped during the evaluation has a complete report
# without one). The job's output goes to DIR.log.
job() {
  local dir="$1" np="$2"
  shift 2
  if grep -qs '"status": "complete"' "$dir/report.json" &&
    { [[ " $* " != *" --eval_dataset="* ]] || grep -qs '"quantized": {' "$dir/report.json"; }; then
    return 0
  fi
  log "${dir#"$OUT"/}"
  mkdir -p "$(dirname "$dir")"
  "${MPIRUN[@]}" -np "$np" "$PSAQ" "$@" --output_dir="$dir" --overwrite >"$dir.log" 2>&1 || {
    tail -5 "$dir.log" >&2
    return 1
  }
}
