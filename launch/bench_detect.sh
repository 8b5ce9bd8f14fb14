#!/usr/bin/env bash
# Inference speed and peak memory of `psaq eval` on a Swin Mask R-CNN (a benchmark, not a test):
# a seeded random-init detector of the shipped size evaluated on a make-scenes val set, at batch
# 1 and 4 with 1 and 2 LibTorch threads, one rank. Prints per run the inference images/s (the
# forward with its pre- and post-processing, psaq eval's "inference" line), the whole run's wall
# time and /usr/bin/time -v's peak resident memory.
#   launch/bench_detect.sh [EMBED_DIM] [IMAGES]      (defaults: 32 16)
# Environment: PSAQ_BUILD_DIR (default build/: needs psaq and tests/launch/make_test_detector).
# Random weights keep max_per_img (100) detections per image, each with a mask to paste and
# encode: a trained detector keeps fewer, so this is the slow end of the post-processing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${PSAQ_BUILD_DIR:-$ROOT/build}"
EMBED="${1:-32}" IMAGES="${2:-16}"
WORK="$(mktemp -d /tmp/psaq_bench_detect.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

# Heads of 32 channels (Swin-T's head size) where the width allows, else of embed/2 channels.
if [ $((EMBED % 32)) -eq 0 ]; then h=$((EMBED / 32)); else h=2; fi
CONFIG="{\"embed_dim\": $EMBED, \"depths\": [2, 2, 2, 2],
  \"num_heads\": [$h, $((2 * h)), $((4 * h)), $((8 * h))], \"fpn_channels\": 64,
  \"rpn_feat_channels\": 64, \"fc_out_channels\": 256, \"mask_conv_channels\": 64,
  \"num_classes\": 10}"
"$BUILD/tests/launch/make_test_detector" "$WORK/det.safetensors" 0 "$CONFIG"
"$BUILD/launch/psaq" make-scenes --split=val --num_images="$IMAGES" --canvas_size=160 \
  --out_dir="$WORK/scenes" >/dev/null 2>&1

echo "== $(date -u +%Y-%m-%dT%H:%MZ) $(hostname), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "detector: $CONFIG" | tr -s ' \n' ' '
echo
echo "$IMAGES images of 160x160 (make-scenes val, seed 0), 1 rank"
printf '%-8s %-6s %-14s %-11s %-10s %-14s\n' threads batch "inference/s" detections "wall (s)" "peak RSS MiB"
for threads in 1 2; do
  for batch in 1 4; do
    OMP_NUM_THREADS=$threads /usr/bin/time -v -o "$WORK/time.txt" "$BUILD/launch/psaq" eval \
      --model="$WORK/det.safetensors" --dataset="$WORK/scenes/instances_val.json" \
      --batch_size="$batch" --json_out="$WORK/r.json" >/dev/null 2>"$WORK/err.txt" ||
      { cat "$WORK/err.txt" >&2; exit 1; }
    field() { tr -d ' \n' <"$WORK/r.json" | grep -oE "\"$1\":[0-9.e+-]+" | head -1 | sed 's/.*://'; }
    rss_kb=$(grep 'Maximum resident set size' "$WORK/time.txt" | awk '{print $NF}')
    wall=$(grep 'Elapsed (wall clock)' "$WORK/time.txt" | awk '{print $NF}')
    printf '%-8s %-6s %-14.2f %-11s %-10s %-14.0f\n' "$threads" "$batch" "$(field images_per_second)" \
      "$(field detections)" "$wall" "$(awk -v k="$rss_kb" 'BEGIN { print k / 1024 }')"
  done
done
