#!/usr/bin/env bash
# Live timm parity (label timm): the pinned timm (launch/requirements-torch2.txt) builds random-
# weight ViT/DeiT/Swin models, small ones of several shapes and the 8 presets at 224^2
# (tests/model/timm_live_fixtures.py), and parity_test.cc compares psaq with them, as it does with
# the frozen fixtures: float64 logits, block outputs and A.V head means to 1e-9, float32 logits to
# 1e-4 of the float64 reference (tests/testing/tolerances.h).
#   timm_live_parity_test.sh PYTHON MODEL_TESTS_BINARY
# Prints the timm and torch versions and one line per model; fails unless every model compared.
set -euo pipefail
PYTHON="$1" TESTS="$2"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir=$(mktemp -d "${TMPDIR:-/tmp}/psaq-timm-live.XXXXXX")
trap 'rm -rf "$dir"' EXIT

"$PYTHON" "$HERE/timm_live_fixtures.py" "$dir" | tee "$dir/fixtures.log"
expected=$(find "$dir" -name '*.io.safetensors' | wc -l)
PSAQ_GOLDEN_DIR="$dir" "$TESTS" --gtest_filter='ParityTest.*' | tee "$dir/parity.log"
compared=$(grep -c '^\[ parity   \]' "$dir/parity.log" || true)
if [ "$compared" -ne 14 ] || [ "$expected" -ne 14 ]; then
  echo "FAIL: $compared models compared, $expected fixtures written (expected 14)" >&2
  exit 1
fi
echo "live timm parity: $compared models match ($(head -1 "$dir/fixtures.log"))"
