#!/usr/bin/env bash
# psaq bench on a tiny golden model: every step kind gets a row, --profile prints an op table per
# measurement, a wrong --methods entry is one error line, status 2 (a usage error).
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"

MODEL="$GOLDEN/vit_fmnist.weights.safetensors"
run all "$PSAQ" bench --model="$MODEL" --batch_size=2 --steps=1 --warmup_steps=1 \
  --entropy_impls=fused --profile --profile_top=100
[ "$RC" -eq 0 ] || fail "bench exited $RC"
for row in "V1 step, fused entropy" "V1 step without entropy" "V2 sample step" "V2 student step" \
  "eval forward (no grad)"; do
  # Table cells are separated by two or more spaces: step, then ms/step.
  awk -F '  +' -v row="$row" 'index($2, row) == 1 && $3 ~ /^[0-9.]+$/ { found = 1 } END { exit !found }' \
    "$WORK/all.out" || fail "no timed row '$row' in the bench table"
done
for what in "V1 step, fused entropy" "V1 step without entropy" "V2 sample step" \
  "V2 student step" "eval forward"; do
  expect_in all out "profile: $what, 1 steps"
done
# Ops run in every step kind: the forward's matmuls and (not in eval) the backward's.
[ "$(grep -c 'aten::addmm' "$WORK/all.out")" -eq 5 ] || fail "aten::addmm not in each of 5 tables"
expect_in all out "op calls per step"

run eval_only "$PSAQ" bench --model="$MODEL" --batch_size=2 --steps=1 --warmup_steps=1 --methods=eval
[ "$RC" -eq 0 ] || fail "bench --methods=eval exited $RC"
grep -q "V1 step" "$WORK/eval_only.out" && fail "--methods=eval timed a V1 step"
expect_in eval_only out "eval forward (no grad)"

run bad "$PSAQ" bench --model="$MODEL" --methods=v1,v3
[ "$RC" -eq 2 ] || fail "--methods=v1,v3 exited $RC, expected 2"
[ "$(psaq_error_lines bad | wc -l)" -eq 1 ] || fail "--methods=v1,v3: not exactly one error line"
expect_in bad err "--methods takes v1, v2 and/or eval, got 'v3'"
finish
