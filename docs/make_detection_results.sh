#!/usr/bin/env bash
# Regenerates the "Detection" section of docs/results.md: the shipped Swin Mask R-CNN
# (model/zoo/fmnist_maskrcnn.safetensors) quantized with each calibration source, measured by
# box and mask AP on synthetic val scenes (issue 20).
#   docs/make_detection_results.sh      (after launch/test.sh or launch/demo.sh has built psaq)
# Data: make-scenes train (TRAIN_IMAGES scenes, seed 1: the detector's training recipe) for the
# real images, val (VAL_IMAGES scenes, seed 1) for the AP. For each bit setting and seed:
#   real1, real32   1 and 32 training scenes (--method=real: a seeded choice), at their 160 px;
#   noise           32 N(0,1) images of 160 x 160;
#   v1              32 V1 samples of the Fashion-MNIST Swin classifier (V1_TEACHER, the official
#                   2 x 500 steps), resized to 160 x 160 (--v1_teacher); they do not depend on the
#                   bits, so they are generated once per seed (psaq generate) and quantized at
#                   every setting (--method=files);
#   v2              32 V2 samples at V2_SIZE px with V2_FLAGS (the student is the exported model).
# Then, when ABLATION=1, one V2 knob at a time at W4/A8 (where the sources differ) over
# ABLATION_SEEDS: where D is taken (fpn, rpn, fpn+rpn against the default fpn+roi), and with D on
# the FPN: generation size (64, 160), a longer schedule (also with fpn+roi), no adversarial term,
# and the quantization scope (backbone, backbone_neck; with real32 too).
# Every run's directory stays under $RESULTS_DIR and finished runs are kept (docs/results_jobs.sh),
# so a second call only does what is missing; docs/detection_results.py reads their report.json
# files and replaces the section between its markers in docs/results.md (the rest of the page is
# docs/make_results.sh's).
# Environment: BITS ("W,A ..."; default "8,8 6,6 4,8 4,4"), SEEDS (default "0 1 2"), METHODS
# (default "real1 real32 noise v1 v2"), RANKS (2), VAL_IMAGES (200), TRAIN_IMAGES (500), V2_SIZE
# (96), V2_FLAGS (default: the demo's schedule), ABLATION (1/0), ABLATION_SEEDS (default SEEDS),
# RESULTS_DIR (default /tmp/psaq-detection-results), PSAQ_BUILD_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PSAQ="${PSAQ_BUILD_DIR:-$ROOT/build}/launch/psaq"
DETECTOR="$ROOT/model/zoo/fmnist_maskrcnn.safetensors"
V1_TEACHER="$ROOT/model/zoo/fmnist_swin.safetensors"
BITS="${BITS:-8,8 6,6 4,8 4,4}"
SEEDS="${SEEDS:-0 1 2}"
METHODS="${METHODS:-real1 real32 noise v1 v2}"
RANKS="${RANKS:-2}"
VAL_IMAGES="${VAL_IMAGES:-200}"
TRAIN_IMAGES="${TRAIN_IMAGES:-500}"
V2_SIZE="${V2_SIZE:-96}"
V2_FLAGS="${V2_FLAGS:---samples_per_batch=8 --v2_rounds=2 --v2_sample_iterations=4 --v2_image_warmup=1 --v2_student_iterations=2}"
ABLATION="${ABLATION:-1}"
ABLATION_SEEDS="${ABLATION_SEEDS:-$SEEDS}"
OUT="${RESULTS_DIR:-/tmp/psaq-detection-results}"
SIZE=160  # the scenes' canvas: the detector's input size for real, noise and V1
mkdir -p "$OUT"
# shellcheck source=docs/results_jobs.sh
source "$ROOT/docs/results_jobs.sh"
[ -x "$PSAQ" ] || { log "no psaq binary at $PSAQ (build first, or set PSAQ_BUILD_DIR)"; exit 1; }

# Runs are kept only while the detector stays the same (as docs/make_results.sh does per teacher).
sum="$(cat "$DETECTOR" "$V1_TEACHER" | sha256sum | cut -d' ' -f1)"
if [ -d "$OUT/runs" ] && [ "$(cat "$OUT/weights.sha256" 2>/dev/null)" != "$sum" ]; then
  old="$OUT/runs.old-$(date +%Y%m%d-%H%M%S)"
  log "the detector or V1 teacher changed since the runs in $OUT/runs; moved them to $old"
  mv "$OUT/runs" "$old"
fi
mkdir -p "$OUT/runs"
echo "$sum" >"$OUT/weights.sha256"

TRAIN="$OUT/data/train/instances_train.json"
VAL="$OUT/data/val/instances_val.json"
[ -s "$TRAIN" ] || "$PSAQ" make-scenes --split=train --num_images="$TRAIN_IMAGES" --canvas_size=$SIZE \
  --seed=1 --out_dir="$OUT/data/train" >"$OUT/data-train.log" 2>&1
[ -s "$VAL" ] || "$PSAQ" make-scenes --split=val --num_images="$VAL_IMAGES" --canvas_size=$SIZE \
  --seed=1 --out_dir="$OUT/data/val" >"$OUT/data-val.log" 2>&1
[ -s "$OUT/float.json" ] || "${MPIRUN[@]}" -np "$RANKS" "$PSAQ" eval --model="$DETECTOR" \
  --dataset="$VAL" --json_out="$OUT/float.json" >"$OUT/float.log" 2>&1

EVAL=(--eval_dataset="$VAL" --eval_float=false)
# cell DIR METHOD W A SEED [FLAGS...]: one quantization of the detector, evaluated.
cell() {
  local dir="$1" method="$2" w="$3" a="$4" seed="$5"
  shift 5
  local source=()
  case "$method" in
    real1) source=(--method=real --dataset="$TRAIN" --num_samples=1) ;;
    real32) source=(--method=real --dataset="$TRAIN" --num_samples=32) ;;
    noise) source=(--method=noise --image_size=$SIZE --num_samples=32) ;;
    v1) source=(--method=files --sample_files="$OUT/runs/samples-v1-s$seed/samples") ;;
    # shellcheck disable=SC2206
    v2) source=(--method=v2 --image_size="$V2_SIZE" --num_samples=32 $V2_FLAGS) ;;
    *) log "unknown method $method (METHODS)"; return 1 ;;
  esac
  job "$dir" "$RANKS" quantize --model="$DETECTOR" "${source[@]}" --w_bits="$w" --a_bits="$a" \
    --seed="$seed" "$@" "${EVAL[@]}"
}

for seed in $SEEDS; do
  if [[ " $METHODS " == *" v1 "* ]]; then
    job "$OUT/runs/samples-v1-s$seed" "$RANKS" generate --model="$DETECTOR" --method=v1 \
      --v1_teacher="$V1_TEACHER" --image_size=$SIZE --num_samples=32 --seed="$seed"
  fi
  for bits in $BITS; do
    w="${bits%,*}" a="${bits#*,}"
    for method in $METHODS; do
      cell "$OUT/runs/w${w}a${a}-$method-s$seed" "$method" "$w" "$a" "$seed"
    done
  done
done

# The ablation ran first with D on the FPN alone (then the default); the D rows chose fpn+roi, the
# default since, so the other V2 rows keep --v2_detector_discrepancy=fpn, as they were measured.
if [ "$ABLATION" = 1 ]; then
  LONG=(--v2_rounds=4 --v2_sample_iterations=16 --v2_student_iterations=8)
  for seed in $ABLATION_SEEDS; do
    FPN=(--v2_detector_discrepancy=fpn)
    cell "$OUT/runs/ablation-d_fpn-s$seed" v2 4 8 "$seed" "${FPN[@]}"
    V2_SIZE=64 cell "$OUT/runs/ablation-size64-s$seed" v2 4 8 "$seed" "${FPN[@]}"
    V2_SIZE=160 cell "$OUT/runs/ablation-size160-s$seed" v2 4 8 "$seed" "${FPN[@]}"
    cell "$OUT/runs/ablation-d_rpn-s$seed" v2 4 8 "$seed" --v2_detector_discrepancy=rpn
    cell "$OUT/runs/ablation-d_fpn+rpn-s$seed" v2 4 8 "$seed" --v2_detector_discrepancy=fpn+rpn
    cell "$OUT/runs/ablation-long-s$seed" v2 4 8 "$seed" "${FPN[@]}" "${LONG[@]}"
    cell "$OUT/runs/ablation-d_fpn+roi-long-s$seed" v2 4 8 "$seed" \
      --v2_detector_discrepancy=fpn+roi "${LONG[@]}"
    cell "$OUT/runs/ablation-lambda0-s$seed" v2 4 8 "$seed" "${FPN[@]}" --v2_adversarial_weight=0
    for scope in backbone backbone_neck; do
      cell "$OUT/runs/ablation-scope_$scope-s$seed" v2 4 8 "$seed" "${FPN[@]}" --quant_scope=$scope
      cell "$OUT/runs/ablation-scope_$scope-real32-s$seed" real32 4 8 "$seed" --quant_scope=$scope
    done
  done
fi

command="BITS=\"$BITS\" SEEDS=\"$SEEDS\" METHODS=\"$METHODS\" RANKS=$RANKS VAL_IMAGES=$VAL_IMAGES"
command+=" TRAIN_IMAGES=$TRAIN_IMAGES V2_SIZE=$V2_SIZE V2_FLAGS=\"$V2_FLAGS\" ABLATION=$ABLATION"
command+=" ABLATION_SEEDS=\"$ABLATION_SEEDS\" docs/make_detection_results.sh"
page_ablation_seeds="$ABLATION_SEEDS"
[ "$ABLATION" = 1 ] || page_ablation_seeds=""
/usr/bin/python3 "$ROOT/docs/detection_results.py" --results_dir "$OUT" --bits "$BITS" \
  --seeds "$SEEDS" --methods "$METHODS" --ablation_seeds "$page_ablation_seeds" \
  --v2_flags="--image_size=$V2_SIZE $V2_FLAGS" --command "$command" --markdown "$ROOT/docs/results.md"
log "wrote the Detection section of docs/results.md"
