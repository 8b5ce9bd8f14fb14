#!/usr/bin/env bash
# detector_zoo_check (the shipped detector's CI check) on a seeded random-init tiny detector whose
# metadata records what `psaq eval` measured on a make-scenes val set: it passes; it fails, naming
# the field, when the recorded box AP or mask AP is off by 0.002 (over the 0.001 tolerance), the
# recorded checksum is not the set's, or a field is missing.
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"

: "${PSAQ_MAKE_DETECTOR:?set PSAQ_MAKE_DETECTOR to the make_test_detector binary}"
: "${PSAQ_DETECTOR_ZOO_CHECK:?set PSAQ_DETECTOR_ZOO_CHECK to the detector_zoo_check binary}"
CONFIG='{"embed_dim": 8, "depths": [2, 2, 2, 2], "num_heads": [1, 1, 2, 2], "fpn_channels": 16,
  "rpn_feat_channels": 16, "fc_out_channels": 32, "mask_conv_channels": 16, "num_classes": 10,
  "score_thr": 0.01, "mask_thr": 0.05}'
SCENES='{"split": "val", "num_images": 8, "seed": 1, "canvas_size": 160}'

run scenes "$PSAQ" make-scenes --split=val --num_images=8 --seed=1 --canvas_size=160 \
  --out_dir="$WORK/scenes"
[ "$RC" -eq 0 ] || fail "make-scenes exited $RC"
CHECKSUM="$(grep -o 'crc32:[0-9a-f]*' "$WORK/scenes.out")"
"$PSAQ_MAKE_DETECTOR" "$WORK/det.safetensors" 7 "$CONFIG" || fail "make_test_detector failed"
run eval "$PSAQ" eval --model="$WORK/det.safetensors" --dataset="$WORK/scenes/instances_val.json" \
  --json_out="$WORK/eval.json"
[ "$RC" -eq 0 ] || fail "eval exited $RC"
# ap KEY: the "AP" of the report's KEY object (box or segm), as written (round-trip digits).
ap() { tr -d ' \n' <"$WORK/eval.json" | grep -oE "\"$1\":\{\"AP\":[-0-9.e]+" | sed 's/.*://'; }
BOX="$(ap box)"
MASK="$(ap segm)"
[ -n "$BOX" ] && [ -n "$MASK" ] || fail "no box/segm AP in $(cat "$WORK/eval.json")"
echo "measured box AP $BOX, mask AP $MASK on $CHECKSUM"

# shipped NAME BOX MASK CHECKSUM [key=value...]: a detector with the same weights and this record.
shipped() {
  local name="$1" box="$2" mask="$3" checksum="$4"
  shift 4
  "$PSAQ_MAKE_DETECTOR" "$WORK/$name.safetensors" 7 "$CONFIG" "val_scenes=$SCENES" \
    "val_data_checksum=$checksum" "val_box_ap=$box" "val_mask_ap=$mask" \
    "train_command=make_test_detector (random init)" "train_seed=7" "$@" ||
    fail "make_test_detector $name failed"
}
# check NAME EXPECTED-STATUS [TEXT]: detector_zoo_check on $WORK/NAME.safetensors.
check() {
  run "$1" "$PSAQ_DETECTOR_ZOO_CHECK" "$WORK/$1.safetensors"
  [ "$RC" -eq "$2" ] || fail "$1: exit status $RC, expected $2: $(cat "$WORK/$1.out" "$WORK/$1.err")"
  [ -z "${3:-}" ] || expect_in "$1" err "$3"
}
off() { awk -v v="$1" 'BEGIN { printf "%.6f", v + 0.002 }'; }

shipped good "$BOX" "$MASK" "$CHECKSUM"
check good 0
cat "$WORK/good.out"
shipped box_off "$(off "$BOX")" "$MASK" "$CHECKSUM"
check box_off 1 "FAIL: val_box_ap: measured"
shipped mask_off "$BOX" "$(off "$MASK")" "$CHECKSUM"
check mask_off 1 "FAIL: val_mask_ap: measured"
shipped other_set "$BOX" "$MASK" "crc32:00000000"
check other_set 1 "is not the recorded val_data_checksum crc32:00000000"
"$PSAQ_MAKE_DETECTOR" "$WORK/unrecorded.safetensors" 7 "$CONFIG" || fail "make_test_detector failed"
check unrecorded 1 "has no metadata 'val_scenes'"
finish
