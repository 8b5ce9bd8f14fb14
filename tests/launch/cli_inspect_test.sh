#!/usr/bin/env bash
# psaq inspect describes the golden weights files; a missing file is one error line, status 1.
# --compare sets an export's ranges beside the real images' (quant/range_compare.h); without
# --dataset, or with --file too, it is one usage line, status 2.
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"

run vit "$PSAQ" inspect --file="$GOLDEN/vit_fmnist.weights.safetensors"
[ "$RC" -eq 0 ] || fail "inspect vit_fmnist exited $RC"
expect_in vit out "architecture  vit: 28x28x1 input, patch 4, embed_dim 32, depth 2, 2 heads"
expect_in vit out "parameters    19,658"

run swin "$PSAQ" inspect --file="$GOLDEN/swin_p4_w7_d16.weights.safetensors" --tensors
[ "$RC" -eq 0 ] || fail "inspect swin exited $RC"
expect_in swin out "architecture  swin: 112x112x3 input, patch 4, embed_dim 16, depths 2-2-2"
expect_in swin out "layers.0.blocks.0.attn.qkv.weight"

run missing "$PSAQ" inspect --file="$WORK/nope.safetensors"
[ "$RC" -eq 1 ] || fail "inspect of a missing file exited $RC, expected 1"
[ "$(psaq_error_lines missing | wc -l)" -eq 1 ] || fail "missing file: not exactly one error line"
expect_in missing err "nope.safetensors"
: "${PSAQ_MAKE_EXPORT:?set PSAQ_MAKE_EXPORT to the make_test_export tool}"
EXPORT="$WORK/w8a8.safetensors"
run make "$PSAQ_MAKE_EXPORT" "$GOLDEN/vit_fmnist.weights.safetensors" "$EXPORT" 8 8
[ "$RC" -eq 0 ] || fail "make_test_export exited $RC"
run compare "$PSAQ" inspect --compare="$EXPORT" --dataset=fashion_mnist --compare_images=64 \
  --compare_rows=5 --compare_json="$WORK/compare.json"
[ "$RC" -eq 0 ] || fail "inspect --compare exited $RC"
expect_in compare out "real clipped %"
expect_in compare out "less damaged points not shown"
grep -q '"point": "input"' "$WORK/compare.json" || fail "compare.json has no input row"
grep -q '"images": 64' "$WORK/compare.json" || fail "compare.json does not record 64 images"

run nodata "$PSAQ" inspect --compare="$EXPORT"
[ "$RC" -eq 2 ] || fail "--compare without --dataset exited $RC, expected 2"
[ "$(psaq_error_lines nodata | wc -l)" -eq 1 ] || fail "--compare without --dataset: not one line"
expect_in nodata err "--compare needs --dataset"

run both "$PSAQ" inspect --compare="$EXPORT" --file="$EXPORT" --dataset=fashion_mnist
[ "$RC" -eq 2 ] || fail "--file with --compare exited $RC, expected 2"
expect_in both err "exactly one of --file"
finish
