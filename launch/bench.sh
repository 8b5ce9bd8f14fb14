#!/usr/bin/env bash
# Times a PSAQ-ViT generation step in psaq and in Python/timm on the same machine, side by side.
#   launch/bench.sh [MODEL] [BATCH] [RANKS]      (defaults: swin_small_patch4_window7_224 32 1)
# MODEL is a preset or a weights file; the Python reference runs only for presets (timm names)
# and only when python3 can import torch and timm (the GPU machine's venv: set PYTHON=...).
# Environment: PSAQ_BUILD_DIR (default build/), PSAQ_BENCH_ARGS (extra psaq bench flags, e.g.
# --device=cuda --steps=20), PYTHON (default python3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PSAQ="${PSAQ_BUILD_DIR:-$ROOT/build}/launch/psaq"
MODEL="${1:-swin_small_patch4_window7_224}" BATCH="${2:-32}" RANKS="${3:-1}"
PYTHON="${PYTHON:-python3}"
MPIRUN=(mpirun -np "$RANKS" --oversubscribe)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)

echo "== $(date -u +%Y-%m-%dT%H:%MZ) $(hostname): $MODEL, batch $BATCH, $RANKS rank(s)"
# shellcheck disable=SC2086
"${MPIRUN[@]}" "$PSAQ" bench --model="$MODEL" --batch_size="$BATCH" ${PSAQ_BENCH_ARGS:-} \
  | tee /tmp/psaq_bench.$$.out
ours=$(grep -E '^ +V1 step, fused entropy' /tmp/psaq_bench.$$.out | awk '{print $5}')
rm -f /tmp/psaq_bench.$$.out
if [ -e "$MODEL" ] || ! "$PYTHON" -c 'import torch, timm' 2>/dev/null; then
  echo "(no Python reference: needs a timm preset name and a python3 with torch and timm)"
  exit 0
fi
ref_line=$("$PYTHON" "$ROOT/launch/bench_timm.py" --model "$MODEL" --batch "$BATCH")
echo "$ref_line"
ref=$(echo "$ref_line" | sed -E 's/.*V1 step ([0-9.]+) ms.*/\1/')
awk -v a="$ours" -v b="$ref" 'BEGIN { printf "psaq V1 step %.1f ms / timm %.1f ms = %.2fx\n", a, b, a / b }'
