#!/usr/bin/env bash
# Runs the quantizer comparison of docs/quantizers.md: psaq quantize with --quantizer=repq (and
# psaq's quantizer beside it) on the shipped teachers, V2 samples and 32 real images, one run per
# (teacher, bits, source, quantizer, seed), each evaluated on the 10,000 Fashion-MNIST test images.
# Prints one line per run: teacher bits source quantizer[-observer][-prior] seed top1. A run whose
# directory already holds an evaluated report is not run again.
# Environment: TEACHERS (default "fmnist_vit fmnist_swin"), CELLS ("w,a,source,quantizer" or
# "w,a,source,quantizer,observer[,prior[,input_bits]]" with observer minmax (the default here, as
# the first runs), percentile or mse (--act_observer), prior none (default) or layernorm
# (--fold_prior) and input_bits the image's bits (--bits_overrides=input=N; default the cell's a),
# default "4,4,v2,repq 4,4,real,repq"), SEEDS (default "0 1 2"), RANKS (2), RESULTS_DIR
# (/tmp/psaq-quantizers), PSAQ_BUILD_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PSAQ="${PSAQ_BUILD_DIR:-$ROOT/build}/launch/psaq"
TEACHERS="${TEACHERS:-fmnist_vit fmnist_swin}"
CELLS="${CELLS:-4,4,v2,repq 4,4,real,repq}"
SEEDS="${SEEDS:-0 1 2}"
RANKS="${RANKS:-2}"
OUT="${RESULTS_DIR:-/tmp/psaq-quantizers}"
MPIRUN=(mpirun --oversubscribe)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
mkdir -p "$OUT"

top1() { grep -o '"top1": [0-9.]*' "$1/report.json" | tail -1 | cut -d' ' -f2; }

for seed in $SEEDS; do
  for teacher in $TEACHERS; do
    for cell in $CELLS; do
      IFS=, read -r w a source quantizer observer prior input_bits <<<"$cell"
      observer="${observer:-minmax}" prior="${prior:-none}" input_bits="${input_bits:-$a}"
      name="$quantizer"
      [ "$observer" = minmax ] || name+="-$observer"
      [ "$prior" = none ] || name+="-$prior"
      [ "$input_bits" = "$a" ] || name+="-in$input_bits"
      dir="$OUT/$teacher-w${w}a${a}-$source-$name-s$seed"
      if ! grep -qs '"quantized": {' "$dir/report.json"; then
        args=(--model="$ROOT/model/zoo/$teacher.safetensors" --method="$source" --num_samples=32
              --w_bits="$w" --a_bits="$a" --seed="$seed" --quantizer="$quantizer"
              --act_observer="$observer" --fold_prior="$prior"
              --eval_dataset=fashion_mnist --eval_float=false)
        [ "$source" = real ] && args+=(--dataset=fashion_mnist)
        [ "$input_bits" = "$a" ] || args+=(--bits_overrides="input=$input_bits")
        start=$SECONDS
        "${MPIRUN[@]}" -np "$RANKS" "$PSAQ" quantize "${args[@]}" --output_dir="$dir" --overwrite \
          >"$dir.log" 2>&1 || { echo "FAILED $dir (see $dir.log)"; tail -3 "$dir.log"; continue; }
        echo "# $teacher W$w/A$a $source $name seed $seed: $((SECONDS - start)) s" >&2
      fi
      echo "$teacher W$w/A$a $source $name $seed $(top1 "$dir")"
    done
  done
done
