#!/usr/bin/env bash
# Regenerates docs/results.md and docs/results.png: data-free quantization of the shipped
# Fashion-MNIST teachers (model/zoo/) measured the way the papers do on ImageNet.
#   docs/make_results.sh            (after launch/test.sh or launch/demo.sh has built psaq)
# For each teacher, bit setting and seed: top-1 on the 10,000 test images after calibration from
# 32 real training images, 32 N(0,1) images, 32 V1 samples, 32 V1 samples made with --v1_official
# (the paper's TV weight, for comparison with psaq's default) and 32 V2 samples (V2 at the
# setting's bits: its student is the exported model). V1/noise/real samples do not depend on the bits: they
# are generated once per seed (psaq generate) and quantized at every setting (--method=files).
# Then the V2 ablation, the number of samples over 1 and 2 ranks, and the real, noise and V1
# samples quantized again with --input_range=pixel_box. Every run's directory stays
# under $RESULTS_DIR; docs/results.py reads their report.json files and writes the page.
# The ablation runs first: it is what the V2 defaults were chosen from, and the main table's V2
# column uses the defaults. Finished runs are kept while the teacher file is unchanged, so a second
# call only does what is missing; runs of a replaced teacher are moved aside.
# Environment (to run a part): TEACHERS, BITS ("W,A ..."), SEEDS, RANKS, ABLATION (1/0),
# ABLATION_SEEDS (default SEEDS), ABLATION_BITS (the ablation's settings, default "4,4"),
# ABLATION_VARIANTS (names below, default all), SAMPLE_SWEEP (1/0), SWEEP (samples x ranks, default
# "32x1 32x2 128x1 128x2 512x1 512x2"; a point may name its own methods: "512x1:v1,v2"),
# SWEEP_METHODS (the other points' methods, default "v1 v2"), INPUT_RANGE_BITS (settings of the
# input-range comparison, default "8,8 4,8 4,4"; "" leaves it out),
# RESULTS_DIR (default /tmp/psaq-results), PSAQ_BUILD_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PSAQ="${PSAQ_BUILD_DIR:-$ROOT/build}/launch/psaq"
TEACHERS="${TEACHERS:-fmnist_swin fmnist_vit}"
BITS="${BITS:-8,8 6,6 4,8 4,4 4,3}"
SEEDS="${SEEDS:-0 1 2}"
RANKS="${RANKS:-2}"
ABLATION_SEEDS="${ABLATION_SEEDS:-$SEEDS}"
ABLATION_BITS="${ABLATION_BITS:-4,4}"
ABLATION_VARIANTS="${ABLATION_VARIANTS:-}"
SWEEP="${SWEEP:-32x1 32x2 128x1 128x2 512x1 512x2}"
SWEEP_METHODS="${SWEEP_METHODS:-v1 v2}"
INPUT_RANGE_BITS="${INPUT_RANGE_BITS-8,8 4,8 4,4}"
OUT="${RESULTS_DIR:-/tmp/psaq-results}"
mkdir -p "$OUT"
# shellcheck source=docs/results_jobs.sh
source "$ROOT/docs/results_jobs.sh"

# Runs are kept per teacher only while its weights stay the same: a retrained teacher's old runs
# would otherwise count as finished. $OUT/TEACHER/weights.sha256 records the weights they used.
for teacher in $TEACHERS; do
  model="$ROOT/model/zoo/$teacher.safetensors"
  [ -f "$model" ] || { log "no teacher $model (TEACHERS)"; exit 1; }
  sum="$(sha256sum "$model" | cut -d' ' -f1)"
  dir="$OUT/$teacher"
  if [ -d "$dir" ] && [ "$(cat "$dir/weights.sha256" 2>/dev/null)" != "$sum" ]; then
    old="$dir.old-$(date +%Y%m%d-%H%M%S)"
    log "$teacher: $model is not the model of the runs in $dir; moved them to $old"
    mv "$dir" "$old"
  fi
  mkdir -p "$dir"
  echo "$sum" >"$dir/weights.sha256"
done

EVAL=(--eval_dataset=fashion_mnist --eval_float=false)
# v2 MODEL DIR W A SEED [FLAGS...]: V2 on 32 samples over RANKS ranks, evaluated.
v2() {
  local model="$1" dir="$2" w="$3" a="$4" seed="$5"
  shift 5
  job "$dir" "$RANKS" quantize --model="$model" --method=v2 --num_samples=32 --w_bits="$w" \
    --a_bits="$a" --seed="$seed" "$@" "${EVAL[@]}"
}

# The V2 ablation on the first teacher (by default the Swin: the demo's model, and the cheaper to run)
# at each of ABLATION_BITS (by default W4/A4, where sources differ): one knob at a time, and the
# two best at W4/A8 together. Its defaults run is the main table's V2 cell (w{W}a{A}-v2), its
# variants ablation-w{W}a{A}-NAME.
if [ "${ABLATION:-1}" = 1 ]; then
  teacher="${TEACHERS%% *}"
  model="$ROOT/model/zoo/$teacher.safetensors"
  mkdir -p "$OUT/$teacher"
  declare -A variants=(
    [recalibrate_only]="--v2_student_update=recalibrate_only"
    [lambda0]="--v2_adversarial_weight=0"
    [lambda0.3]="--v2_adversarial_weight=0.3"
    [lambda3]="--v2_adversarial_weight=3"
    [rounds5]="--v2_rounds=5"
    [rounds20]="--v2_rounds=20"
    [student_lr1e-4]="--v2_student_lr=1e-4"
    [lambda3_student_lr1e-4]="--v2_adversarial_weight=3 --v2_student_lr=1e-4"
  )
  [ -n "$ABLATION_VARIANTS" ] || ABLATION_VARIANTS="${!variants[*]}"
  for name in $ABLATION_VARIANTS; do
    [ -n "${variants[$name]+set}" ] || {
      log "ABLATION_VARIANTS: no variant '$name' (have: ${!variants[*]})"
      exit 1
    }
  done
  for bits in $ABLATION_BITS; do
    w="${bits%,*}" a="${bits#*,}"
    for seed in $ABLATION_SEEDS; do
      v2 "$model" "$OUT/$teacher/w${w}a${a}-v2-s$seed" "$w" "$a" "$seed"
      for name in $ABLATION_VARIANTS; do
        # shellcheck disable=SC2086
        v2 "$model" "$OUT/$teacher/ablation-w${w}a${a}-$name-s$seed" "$w" "$a" "$seed" \
          ${variants[$name]}
      done
    done
  done
fi

for teacher in $TEACHERS; do
  model="$ROOT/model/zoo/$teacher.safetensors"
  base="$OUT/$teacher"
  mkdir -p "$base"
  [ -s "$base/float.json" ] || "${MPIRUN[@]}" -np "$RANKS" "$PSAQ" eval --model="$model" \
    --dataset=fashion_mnist --json_out="$base/float.json" >"$base/float.log" 2>&1
  for seed in $SEEDS; do
    job "$base/samples-v1-s$seed" "$RANKS" generate --model="$model" --method=v1 \
      --num_samples=32 --seed="$seed"
    job "$base/samples-noise-s$seed" "$RANKS" generate --model="$model" --method=noise \
      --num_samples=32 --seed="$seed"
    job "$base/samples-real-s$seed" "$RANKS" generate --model="$model" --method=real \
      --dataset=fashion_mnist --num_samples=32 --seed="$seed"
    job "$base/samples-v1off-s$seed" "$RANKS" generate --model="$model" --method=v1 \
      --v1_official --num_samples=32 --seed="$seed"
    for bits in $BITS; do
      w="${bits%,*}" a="${bits#*,}"
      for source in v1 v1off noise real; do
        job "$base/w${w}a${a}-$source-s$seed" "$RANKS" quantize --model="$model" --method=files \
          --sample_files="$base/samples-$source-s$seed/samples" --w_bits="$w" --a_bits="$a" \
          "${EVAL[@]}"
      done
      v2 "$model" "$base/w${w}a${a}-v2-s$seed" "$w" "$a" "$seed"
    done
  done
done

# The number of samples, split over 1 and 2 ranks (SWEEP_METHODS at W4/A4, first seed).
if [ "${SAMPLE_SWEEP:-1}" = 1 ]; then
  teacher="${TEACHERS%% *}"
  model="$ROOT/model/zoo/$teacher.safetensors"
  seed="${SEEDS%% *}"
  for point in $SWEEP; do
    methods="$SWEEP_METHODS"
    if [[ "$point" == *:* ]]; then
      methods="${point#*:}"
      methods="${methods//,/ }"
      point="${point%%:*}"
    fi
    n="${point%x*}" np="${point#*x}"
    for method in $methods; do
      job "$OUT/$teacher/samples$n-np$np-$method" "$np" quantize --model="$model" \
        --method="$method" --num_samples="$n" --w_bits=4 --a_bits=4 --seed="$seed" "${EVAL[@]}"
    done
  done
fi

# The input quantizer's range: the first teacher's real, noise and V1 samples of every seed,
# quantized again with the pixel box as the input range (the main table has them calibrated).
teacher="${TEACHERS%% *}"
for bits in $INPUT_RANGE_BITS; do
  w="${bits%,*}" a="${bits#*,}"
  for seed in $SEEDS; do
    for source in v1 noise real; do
      job "$OUT/$teacher/w${w}a${a}-$source-box-s$seed" "$RANKS" quantize \
        --model="$ROOT/model/zoo/$teacher.safetensors" --method=files \
        --sample_files="$OUT/$teacher/samples-$source-s$seed/samples" --w_bits="$w" --a_bits="$a" \
        --input_range=pixel_box "${EVAL[@]}"
    done
  done
done

command="TEACHERS=\"$TEACHERS\" BITS=\"$BITS\" SEEDS=\"$SEEDS\" RANKS=$RANKS"
command+=" ABLATION=${ABLATION:-1} ABLATION_SEEDS=\"$ABLATION_SEEDS\""
command+=" ABLATION_BITS=\"$ABLATION_BITS\" ABLATION_VARIANTS=\"$ABLATION_VARIANTS\""
command+=" SAMPLE_SWEEP=${SAMPLE_SWEEP:-1} SWEEP=\"$SWEEP\""
command+=" SWEEP_METHODS=\"$SWEEP_METHODS\" INPUT_RANGE_BITS=\"$INPUT_RANGE_BITS\""
command+=" docs/make_results.sh"
# The page reports only the parts this call ran (finished runs of other parts are not shown).
page_ablation_seeds="$ABLATION_SEEDS" page_sweep="$SWEEP"
[ "${ABLATION:-1}" = 1 ] || page_ablation_seeds=""
[ "${SAMPLE_SWEEP:-1}" = 1 ] || page_sweep=""
/usr/bin/python3 "$ROOT/docs/results.py" --results_dir "$OUT" --teachers "$TEACHERS" \
  --bits "$BITS" --seeds "$SEEDS" --ablation_seeds "$page_ablation_seeds" \
  --ablation_bits "$ABLATION_BITS" \
  --sweep "$page_sweep" --input_range_bits "$INPUT_RANGE_BITS" --command "$command" \
  --markdown "$ROOT/docs/results.md" --plot "$ROOT/docs/results.png"
log "wrote docs/results.md and docs/results.png"
