#!/usr/bin/env bash
# The main job, end to end on this machine: data-free W4/A8 quantization of the shipped
# Fashion-MNIST Swin (model/zoo/fmnist_swin.safetensors) across 2 MPI ranks with PSAQ-ViT V2,
# then the same model calibrated with V1 samples, Gaussian noise and real training images for
# comparison, each evaluated on the 10,000 test images. Prints a table (top-1 and wall time of
# each) and where the quantized models and reports are.
#   launch/demo.sh
#   launch/demo.sh detect   the shipped Swin Mask R-CNN (model/zoo/fmnist_maskrcnn.safetensors)
#                           quantized to W8/A8 with V2 on the ranks (32 samples of 96 x 96, 2 rounds
#                           of 4 sample and 2 student steps, D on the FPN and RoI heads: about 1.5
#                           minutes on 2 loaded cores), float vs quantized box/mask AP on 100
#                           synthetic val scenes
# Installs the missing Debian packages, builds the psaq binary in Release (-j$(nproc)); safe to run twice (each
# run replaces the previous outputs). Environment:
#   PSAQ_DEMO_DIR     outputs (default /tmp/psaq-demo)
#   PSAQ_DEMO_MODEL   the float model (default the shipped Swin)
#   PSAQ_DEMO_RANKS   MPI ranks (default 2)
#   PSAQ_DEMO_BITS    "W A" bit widths (default "4 8")
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

psaq_install_packages "${PSAQ_PACKAGES[@]}"
psaq_build psaq  # only the binary the demo runs, not the tests

PSAQ="$PSAQ_BUILD_DIR/launch/psaq"
OUT="${PSAQ_DEMO_DIR:-/tmp/psaq-demo}"
MODEL="${PSAQ_DEMO_MODEL:-$PSAQ_ROOT/model/zoo/fmnist_swin.safetensors}"
RANKS="${PSAQ_DEMO_RANKS:-2}"
read -r W_BITS A_BITS <<<"${PSAQ_DEMO_BITS:-4 8}"
MPIRUN=(mpirun -np "$RANKS" --oversubscribe)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)
mkdir -p "$OUT"

# seconds_since T0: wall seconds with one decimal.
now() { date +%s.%N; }
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

if [ "${1:-}" = detect ]; then
  DETECTOR="$PSAQ_ROOT/model/zoo/fmnist_maskrcnn.safetensors"
  "$PSAQ" make-scenes --split=val --num_images=100 --canvas_size=160 --seed=1 \
    --out_dir="$OUT/scenes" >/dev/null
  psaq_log "W8/A8 with V2 calibration of $(basename "$DETECTOR") on $RANKS ranks"
  t0=$(now)
  "${MPIRUN[@]}" "$PSAQ" quantize --model="$DETECTOR" --method=v2 --w_bits=8 --a_bits=8 \
    --num_samples=32 --samples_per_batch=8 --image_size=96 --v2_rounds=2 \
    --v2_sample_iterations=4 --v2_image_warmup=1 --v2_student_iterations=2 \
    --eval_dataset="$OUT/scenes/instances_val.json" --output_dir="$OUT/detect_v2" --overwrite \
    | tee "$OUT/detect_v2.log"
  t=$(seconds_since "$t0")
  echo
  echo "psaq demo detect: $(basename "$DETECTOR") on 100 val scenes, $RANKS MPI ranks, ${t}s in all"
  grep -E '^ +(box/mask AP|wall time|phases)' "$OUT/detect_v2.log"
  echo "  quantized detector: $OUT/detect_v2/model.safetensors; report: $OUT/detect_v2/report.json"
  exit 0
fi

psaq_log "float model: $MODEL"
t0=$(now)
"${MPIRUN[@]}" "$PSAQ" eval --model="$MODEL" --dataset=fashion_mnist --json_out="$OUT/float.json" \
  | tee "$OUT/float.log"
float_time=$(seconds_since "$t0")
float_top1=$(grep -E '^ *top-1 ' "$OUT/float.log" | grep -oE '[0-9]+\.[0-9]+%' | head -1)

rows=()
for method in v2 v1 noise real; do
  extra=()
  [ "$method" = real ] && extra=(--dataset=fashion_mnist)
  psaq_log "W$W_BITS/A$A_BITS with $method calibration on $RANKS ranks"
  t0=$(now)
  "${MPIRUN[@]}" "$PSAQ" quantize --model="$MODEL" --method="$method" --w_bits="$W_BITS" \
    --a_bits="$A_BITS" --num_samples=32 --eval_dataset=fashion_mnist "${extra[@]}" \
    --output_dir="$OUT/$method" --overwrite | tee "$OUT/$method.log"
  t=$(seconds_since "$t0")
  job=$(grep -E '^ +wall time' "$OUT/$method.log" | awk '{print $3}')
  top1=$(grep -E '^ +top-1 quantized' "$OUT/$method.log" | grep -oE '[0-9]+\.[0-9]+%' | head -1)
  rows+=("$method|$top1|$job|$t")
done

echo
echo "psaq demo: $(basename "$MODEL") on Fashion-MNIST test (10,000 images), $RANKS MPI ranks"
printf '  %-34s %8s %9s %9s\n' "model" "top-1" "job" "total"
printf '  %-34s %8s %9s %9s\n' "----------------------------------" "--------" "---------" "---------"
printf '  %-34s %8s %9s %8ss\n' "float" "$float_top1" "-" "$float_time"
for row in "${rows[@]}"; do
  IFS='|' read -r method top1 job t <<<"$row"
  case "$method" in
    v2) label="PSAQ-ViT V2 (data-free)" ;;
    v1) label="PSAQ-ViT V1 (data-free)" ;;
    noise) label="Gaussian noise" ;;
    real) label="32 real training images" ;;
  esac
  printf '  %-34s %8s %9s %8ss\n' "W$W_BITS/A$A_BITS $label" "$top1" "$job" "$t"
done
echo
echo "  job: samples + calibration + export (report.json); total: the whole command, including the"
echo "  evaluation of the float and the quantized model on the test set"
echo "  quantized model (V2):  $OUT/v2/model.safetensors (+ model.manifest.json)"
echo "  report (V2):           $OUT/v2/report.json"
echo "  the other methods:     $OUT/{v1,noise,real}/"
