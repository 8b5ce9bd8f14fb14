#!/usr/bin/env bash
# Times PSAQ-ViT steps in psaq and in Python/timm on the same machine, side by side, and prints the
# ratio psaq / Python per step kind.
#   launch/bench.sh [MODEL] [BATCH] [RANKS]      (defaults: swin_small_patch4_window7_224 32 1)
# MODEL is a timm preset or a psaq weights file (the Python side then builds the timm model the
# file's metadata records, launch/bench_timm.py --weights). The Python side runs when $PYTHON can
# import torch and timm; for the same library as psaq's Debian LibTorch 1.13 use Debian's
# python3-torch: python3 -m venv --system-site-packages .venv-bench (with /usr/bin/python3) and
# .venv-bench/bin/pip install --no-deps timm==0.9.16, then PYTHON=.venv-bench/bin/python.
# The two sides alternate REPEATS times (psaq, Python, psaq, Python, ...), so that load from other
# jobs on a shared machine falls on both; each repeat prints its ratios, the last line their median.
# Environment: PSAQ_BUILD_DIR (default build/), PSAQ_BENCH_ARGS (extra psaq bench flags, e.g.
# --device=cuda --steps=20), PYTHON (default python3), THREADS (intra-op threads of both sides,
# default 1: OMP_NUM_THREADS for psaq, --threads for Python), REPEATS (default 3), STEPS (timed
# steps per measurement on both sides, default 10).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PSAQ="${PSAQ_BUILD_DIR:-$ROOT/build}/launch/psaq"
MODEL="${1:-swin_small_patch4_window7_224}" BATCH="${2:-32}" RANKS="${3:-1}"
PYTHON="${PYTHON:-python3}" THREADS="${THREADS:-1}" REPEATS="${REPEATS:-3}" STEPS="${STEPS:-10}"
MPIRUN=(mpirun -np "$RANKS" --oversubscribe)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

python_ok=1
"$PYTHON" -c 'import torch, timm' 2>/dev/null || python_ok=0
if [ -e "$MODEL" ]; then py_model=(--weights "$MODEL"); else py_model=(--model "$MODEL"); fi
echo "== $(date -u +%Y-%m-%dT%H:%MZ) $(hostname): $MODEL, batch $BATCH, $RANKS rank(s), $THREADS" \
  "thread(s) per side, $STEPS steps, $REPEATS repeats"
[ "$python_ok" = 1 ] && "$PYTHON" -c 'import torch, timm; print("python side: torch", torch.__version__, "from", torch.__file__, "timm", timm.__version__)'

# ms/step of the psaq bench table row whose step column starts with $1.
# Its cells are separated by two or more spaces: step, ms/step, ...
psaq_ms() { awk -F '  +' -v k="$1" 'index($2, k) == 1 { print $3; exit }' "$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.2f", a / b }'; }

for ((r = 1; r <= REPEATS; r++)); do
  # shellcheck disable=SC2086
  OMP_NUM_THREADS="$THREADS" "${MPIRUN[@]}" "$PSAQ" bench --model="$MODEL" --batch_size="$BATCH" \
    --steps="$STEPS" --entropy_impls=fused ${PSAQ_BENCH_ARGS:-} > "$OUT/psaq.$r" 2> "$OUT/psaq.$r.log" \
    || { cat "$OUT/psaq.$r.log" >&2; exit 1; }
  [ "$r" = 1 ] && sed -n '/^psaq bench:/,$p' "$OUT/psaq.$r"
  v1=$(psaq_ms 'V1 step, fused entropy' "$OUT/psaq.$r")
  v1n=$(psaq_ms 'V1 step without entropy' "$OUT/psaq.$r")
  v2s=$(psaq_ms 'V2 sample step' "$OUT/psaq.$r")
  v2t=$(psaq_ms 'V2 student step' "$OUT/psaq.$r")
  ev=$(psaq_ms 'eval forward' "$OUT/psaq.$r")
  v2s=${v2s:--} v2t=${v2t:--} ev=${ev:--}
  p1=- p1n=- pev=-
  if [ "$python_ok" = 1 ]; then
    OMP_NUM_THREADS="$THREADS" "$PYTHON" "$ROOT/launch/bench_timm.py" "${py_model[@]}" \
      --batch "$BATCH" --threads "$THREADS" --steps "$STEPS" --eval > "$OUT/py.$r"
    [ "$r" = 1 ] && cat "$OUT/py.$r"
    p1=$(sed -nE 's/.*V1 step ([0-9.]+) ms.*/\1/p' "$OUT/py.$r")
    p1n=$(sed -nE 's/.*without entropy ([0-9.]+) ms.*/\1/p' "$OUT/py.$r")
    pev=$(sed -nE 's/.*eval forward ([0-9.]+) ms.*/\1/p' "$OUT/py.$r")
  fi
  printf '%s %s %s %s %s %s %s %s\n' "$v1" "$p1" "$v1n" "$p1n" "$ev" "$pev" "$v2s" "$v2t" >> "$OUT/rows"
done

[ "$python_ok" = 1 ] || echo "(no Python side: $PYTHON cannot import torch and timm)"
echo
echo "ms per step, psaq / Python (ratio < 1: psaq faster); V2 has no Python reference"
printf '%-8s %-24s %-24s %-24s %-10s %-10s\n' repeat "V1 with entropy" "V1 without entropy" \
  "eval forward" "V2 sample" "V2 student"
r=0
while read -r v1 p1 v1n p1n ev pev v2s v2t; do
  r=$((r + 1))
  printf '%-8s %-24s %-24s %-24s %-10s %-10s\n' "$r" "$v1 / $p1 = $(ratio "$v1" "$p1")" \
    "$v1n / $p1n = $(ratio "$v1n" "$p1n")" "$ev / $pev = $(ratio "$ev" "$pev")" "$v2s" "$v2t"
done < "$OUT/rows"
# Median over repeats of each ratio.
awk '
  function median(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  $2 != "-" && $4 != "-" && $1 != "-" { n++; w[n] = $1 / $2; wo[n] = $3 / $4; e[n] = $5 / $6 }
  END { if (n) printf "median ratio over %d repeats: V1 with entropy %.2f, without entropy %.2f, eval forward %.2f\n", n, median(w, n), median(wo, n), median(e, n) }
' "$OUT/rows"
