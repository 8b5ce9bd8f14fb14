#!/usr/bin/env bash
# psaq inspect describes the golden weights files; a missing file is one error line, status 1.
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
finish
