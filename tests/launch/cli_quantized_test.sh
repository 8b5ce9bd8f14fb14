#!/usr/bin/env bash
# A quantized export (W4A8 of the golden Fashion-MNIST model, written by make_test_export):
# psaq inspect shows its metadata and manifest; psaq eval gives the same counts on 1 and 2 ranks
# and prints the per-layer SQNR table, worst first, also written to --json_out.
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"
: "${PSAQ_MAKE_EXPORT:?set PSAQ_MAKE_EXPORT to the make_test_export tool}"

read -r -a MPIRUN <<<"$PSAQ_MPIRUN"
json_field() { grep -oE "\"$2\": [0-9.e+-]+" "$1" | head -1 | sed -E 's/.*: //'; }

EXPORT="$WORK/w4a8.safetensors"
run make "$PSAQ_MAKE_EXPORT" "$GOLDEN/vit_fmnist.weights.safetensors" "$EXPORT" 4 8
[ "$RC" -eq 0 ] && [ -f "$EXPORT" ] && [ -f "$WORK/w4a8.manifest.json" ] || {
  fail "make_test_export failed ($RC)"
  finish
}

run inspect "$PSAQ" inspect --file="$EXPORT"
[ "$RC" -eq 0 ] || fail "inspect of the export exited $RC"
expect_in inspect out "quantized export (psaq_quantized version 1, int8 weight codes)"
expect_in inspect out "bits          W4A8"
expect_in inspect out "calibration   noise, 32 samples"
expect_in inspect out "quant points  10 weight points (4 bits: 10), 29 activation points (8 bits: 27, 32 bits: 2)"
expect_in inspect out "parameters    19,658"
expect_in inspect out "blocks.1.mlp.fc2.weight"

for np in 1 2; do
  run "eval_np$np" "${MPIRUN[@]}" -np "$np" "$PSAQ" eval --model="$EXPORT" --dataset=fashion_mnist \
    --max_images=200 --batch_size=32 --json_out="$WORK/np$np.json"
  [ "$RC" -eq 0 ] || { fail "eval of the export on $np rank(s) exited $RC"; sed 's/^/    /' "$WORK/eval_np$np.err" >&2; }
done
expect_in eval_np1 out "quantized export"
expect_in eval_np1 out "per-layer SQNR"
expect_in eval_np1 out "output"
for key in images top1_correct top5_correct; do
  a=$(json_field "$WORK/np1.json" $key)
  b=$(json_field "$WORK/np2.json" $key)
  [ -n "$a" ] && [ "$a" = "$b" ] || fail "$key: $a on 1 rank, $b on 2 ranks"
done
grep -q '"layers"' "$WORK/np2.json" || fail "no per-layer errors in the JSON"
grep -q '"w_bits": "4"' "$WORK/np2.json" || fail "no quantization settings in the JSON"
finish
