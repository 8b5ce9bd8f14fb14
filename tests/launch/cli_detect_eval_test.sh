#!/usr/bin/env bash
# psaq eval on a detector (a seeded random-init tiny Swin Mask R-CNN whose low score_thr makes it
# output detections) on a small make-scenes set: its 24 numbers (box and mask AP/AR) agree with
# pycocotools run on the same ground truth and the detections psaq wrote (--detections_out), to
# 1e-4, and its console holds pycocotools' summarize() lines (also for the shipped detector's
# detections on 40 of its val scenes); 2 and 3 ranks give the same numbers
# and detections as 1; an image that does not decode is skipped (and left out of the ground truth) or
# named; bad input (a detector on a classification set, classes != categories, an image
# too large to run, --detections_out for a classifier) is one error line, on 2 ranks without a hang.
# Needs the pycocotools oracle (PSAQ_ORACLE_PYTHON): fails without it.
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"

: "${PSAQ_MAKE_DETECTOR:?set PSAQ_MAKE_DETECTOR to the make_test_detector binary}"
read -r -a MPIRUN <<<"$PSAQ_MPIRUN"
ORACLE="$PSAQ_SOURCE_DIR/tests/launch/detect_eval_oracle.py"
if [ -z "${PSAQ_ORACLE_PYTHON:-}" ] || ! "$PSAQ_ORACLE_PYTHON" -c 'import pycocotools' 2>/dev/null; then
  fail "no pycocotools oracle: PSAQ_ORACLE_PYTHON='${PSAQ_ORACLE_PYTHON:-}' cannot import pycocotools (cmake -DPSAQ_ORACLE_PYTHON=...; launch/setup.sh installs it)"
  finish
fi

# tiny_config CLASSES: a tiny detector (seconds per image set) that keeps every detection above
# 0.01 and sets a mask pixel from probability 0.05, so random weights give non-trivial AP.
tiny_config() {
  echo "{\"embed_dim\": 8, \"depths\": [2, 2, 2, 2], \"num_heads\": [1, 1, 2, 2],
    \"fpn_channels\": 16, \"rpn_feat_channels\": 16, \"fc_out_channels\": 32,
    \"mask_conv_channels\": 16, \"num_classes\": $1, \"score_thr\": 0.01, \"mask_thr\": 0.05}"
}

run scenes "$PSAQ" make-scenes --split=val --num_images=8 --canvas_size=160 --seed=1 \
  --out_dir="$WORK/scenes"
[ "$RC" -eq 0 ] || fail "make-scenes exited $RC"
GT="$WORK/scenes/instances_val.json"
"$PSAQ_MAKE_DETECTOR" "$WORK/det.safetensors" 7 "$(tiny_config 10)" || fail "make_test_detector failed"

for np in 1 2 3; do
  run "np$np" "${MPIRUN[@]}" -np "$np" "$PSAQ" eval --model="$WORK/det.safetensors" \
    --dataset="$GT" --batch_size=2 --json_out="$WORK/np$np.json" \
    --detections_out="$WORK/dets_np$np.json"
  [ "$RC" -eq 0 ] || fail "eval on $np rank(s) exited $RC: $(tail -3 "$WORK/np$np.err")"
done
expect_in np1 out "images       8 (0 skipped)"

run oracle "$PSAQ_ORACLE_PYTHON" "$ORACLE" "$GT" "$WORK/dets_np1.json" "$WORK/np1.json" \
  "$WORK/np1.out"
[ "$RC" -eq 0 ] || fail "psaq and pycocotools disagree: $(cat "$WORK/oracle.out")"
cat "$WORK/oracle.out"

# The shipped detector's real output (model/zoo/fmnist_maskrcnn.safetensors) on the first 40 of
# its val scenes (make-scenes images depend only on seed, split and index): pycocotools agrees.
SHIPPED="$PSAQ_SOURCE_DIR/model/zoo/fmnist_maskrcnn.safetensors"
run shipped_scenes "$PSAQ" make-scenes --split=val --num_images=40 --canvas_size=160 --seed=1 \
  --out_dir="$WORK/shipped_scenes"
[ "$RC" -eq 0 ] || fail "make-scenes (40 val scenes) exited $RC"
run shipped "${MPIRUN[@]}" -np 2 "$PSAQ" eval --model="$SHIPPED" \
  --dataset="$WORK/shipped_scenes/instances_val.json" --json_out="$WORK/shipped.json" \
  --detections_out="$WORK/dets_shipped.json"
[ "$RC" -eq 0 ] || fail "eval of the shipped detector exited $RC: $(tail -3 "$WORK/shipped.err")"
run shipped_oracle "$PSAQ_ORACLE_PYTHON" "$ORACLE" "$WORK/shipped_scenes/instances_val.json" \
  "$WORK/dets_shipped.json" "$WORK/shipped.json" "$WORK/shipped.out"
[ "$RC" -eq 0 ] || fail "psaq and pycocotools disagree on the shipped detector: $(cat "$WORK/shipped_oracle.out")"
cat "$WORK/shipped_oracle.out"

# stats FILE: the box and segm objects of a report, one line each.
stats() { "$PSAQ_ORACLE_PYTHON" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["box"]); print(r["segm"])' "$1"; }
# 2 ranks take 2 batches of 2 images each, 3 ranks 2, 1 and 1 batches.
for np in 2 3; do
  [ "$(stats "$WORK/np1.json")" = "$(stats "$WORK/np$np.json")" ] ||
    fail "$np ranks: $(stats "$WORK/np$np.json") differs from 1 rank: $(stats "$WORK/np1.json")"
  cmp -s "$WORK/dets_np1.json" "$WORK/dets_np$np.json" ||
    fail "$np ranks wrote other detections than 1"
done

# Two bad images: image 2's compressed data is garbled (it passes the dataset's open-time header
# check and fails to decode during the evaluation), image 5 is cut short (refused when the dataset
# is opened). skip leaves both out of the evaluation, ground truth included (pycocotools on the
# set without them agrees); fail names the first. On 2 ranks.
cp -r "$WORK/scenes" "$WORK/bad"
head -c 200 "$WORK/scenes/val/000005.png" >"$WORK/bad/val/000005.png"
"$PSAQ_ORACLE_PYTHON" - "$WORK/bad/val/000002.png" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
start = b.find(b"IDAT") + 104
b[start:start + 64] = bytes(x ^ 0x5A for x in b[start:start + 64])
open(sys.argv[1], "wb").write(bytes(b))
PY
run skip "${MPIRUN[@]}" -np 2 "$PSAQ" eval --model="$WORK/det.safetensors" \
  --dataset="$WORK/bad/instances_val.json" --batch_size=2 --on_bad_image=skip \
  --json_out="$WORK/skip.json" --detections_out="$WORK/dets_skip.json"
[ "$RC" -eq 0 ] || fail "eval --on_bad_image=skip exited $RC: $(tail -3 "$WORK/skip.err")"
expect_in skip out "images       6 (2 skipped)"
expect_in skip err "skipping malformed image $WORK/bad/val/000002.png"
expect_in skip err "skipped $WORK/bad/instances_val.json: image id 5"
"$PSAQ_ORACLE_PYTHON" - "$GT" "$WORK/gt_without_2_5.json" <<'PY'
import json, sys
gt = json.load(open(sys.argv[1]))
gt["images"] = [i for i in gt["images"] if i["id"] not in (2, 5)]
gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] not in (2, 5)]
json.dump(gt, open(sys.argv[2], "w"))
PY
run oracle_skip "$PSAQ_ORACLE_PYTHON" "$ORACLE" "$WORK/gt_without_2_5.json" "$WORK/dets_skip.json" \
  "$WORK/skip.json" "$WORK/skip.out"
[ "$RC" -eq 0 ] || fail "skip: psaq and pycocotools disagree: $(cat "$WORK/oracle_skip.out")"

# error NAME TEXT ARGS...: psaq eval ARGS on 2 ranks fails with one error line holding TEXT.
error() {
  local name="$1" text="$2"
  shift 2
  run "$name" "${MPIRUN[@]}" -np 2 "$PSAQ" eval "$@"
  [ "$RC" -ne 0 ] || fail "$name: exit status 0"
  [ "$(psaq_error_lines "$name" | sort -u | wc -l)" -eq 1 ] ||
    fail "$name: not one error line: $(cat "$WORK/$name.err")"
  expect_in "$name" err "$text"
}
error bad_image_open "$WORK/bad/instances_val.json: image id 5" \
  --model="$WORK/det.safetensors" --dataset="$WORK/bad/instances_val.json" --batch_size=2
cp "$WORK/scenes/val/000005.png" "$WORK/bad/val/000005.png"
error bad_image_decode "$WORK/bad/val/000002.png: cannot decode image" \
  --model="$WORK/det.safetensors" --dataset="$WORK/bad/instances_val.json" --batch_size=2
"$PSAQ_MAKE_DETECTOR" "$WORK/det3.safetensors" 7 "$(tiny_config 3)" || fail "make_test_detector failed"
error classes "$GT: has 10 categories but the detector 'det3' has 3 classes" \
  --model="$WORK/det3.safetensors" --dataset="$GT"
error not_coco "a detector: evaluate it on a COCO instances JSON file" \
  --model="$WORK/det.safetensors" --dataset=fashion_mnist
error classifier_on_coco "$GT: a COCO detection set, not a classification dataset" \
  --model="$GOLDEN/vit_fmnist.weights.safetensors" --dataset="$GT"
error detector_sqnr "--sqnr_batches applies to quantized exports only" \
  --model="$WORK/det.safetensors" --dataset="$GT" --sqnr_batches=2
error classifier_dets_out "--detections_out applies to detectors only" \
  --model="$GOLDEN/vit_fmnist.weights.safetensors" --dataset=fashion_mnist \
  --detections_out="$WORK/x.json"

# An image wider than the detector runs at (kMaxDetectorImageSide = 4096): a 4100 x 8 grey PNG.
mkdir -p "$WORK/wide"
"$PSAQ_ORACLE_PYTHON" - "$WORK/wide" <<'PY'
import json, struct, sys, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
w, h = 4100, 8
raw = b"".join(b"\0" + bytes(w) for _ in range(h))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
       chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
open(sys.argv[1] + "/wide.png", "wb").write(png)
json.dump({"images": [{"id": 1, "file_name": "wide.png", "width": w, "height": h}],
           "annotations": [], "categories": [{"id": c, "name": str(c)} for c in range(1, 11)]},
          open(sys.argv[1] + "/instances_wide.json", "w"))
PY
error too_large "image id 1 (wide.png): 4100 x 8 px, above the 4096 px" \
  --model="$WORK/det.safetensors" --dataset="$WORK/wide/instances_wide.json"
finish
