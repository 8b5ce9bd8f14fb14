#!/usr/bin/env bash
# psaq generate under mpirun -np 2: V2 samples (a shard per rank, no model) whose report says
# complete; quantizing them later works; generate refuses quantize-only flags. V1 with
# --v1_official makes exactly the samples of --tv_weight=0.05 (the paper's weight, the old default)
# and not those of the default (no TV term); it excludes --tv_weight.
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"
read -r -a MPIRUN <<<"$PSAQ_MPIRUN"
MODEL="$GOLDEN/vit_fmnist.weights.safetensors"
HANG_SECONDS=120

run v2 "${MPIRUN[@]}" -np 2 "$PSAQ" generate --model="$MODEL" --method=v2 --num_samples=8 \
  --samples_per_batch=4 --v2_rounds=2 --v2_sample_iterations=3 --v2_image_warmup=1 \
  --v2_student_iterations=2 \
  --w_bits=4 --a_bits=4 --output_dir="$WORK/gen"
if [ "$RC" -ne 0 ]; then
  fail "generate v2 exited $RC"
  sed 's/^/    /' "$WORK/v2.err" >&2
else
  expect_in v2 out "psaq generate: complete"
  for r in 0 1; do [ -s "$WORK/gen/samples/shard-$r-of-2.safetensors" ] || fail "shard $r missing"; done
  [ -e "$WORK/gen/model.safetensors" ] && fail "generate wrote a model"
  grep -q '"status": "complete"' "$WORK/gen/report.json" || fail "report status is not complete"
  run quantize "$PSAQ" quantize --model="$MODEL" --method=files \
    --sample_files="$WORK/gen/samples" --w_bits=4 --a_bits=8 --output_dir="$WORK/q"
  [ "$RC" -eq 0 ] || { fail "quantize of generated samples exited $RC"; sed 's/^/    /' "$WORK/quantize.err" >&2; }
  expect_in quantize out "psaq_v2 (W4/A8)"
fi

# v1 NAME FLAGS...: a few V1 steps on 4 samples into $WORK/NAME.
v1() {
  local name="$1"
  shift
  run "$name" "$PSAQ" generate --model="$MODEL" --method=v1 --num_samples=4 --samples_per_batch=4 \
    --v1_epochs=1 --v1_iterations=4 --v1_warmup=1 --output_dir="$WORK/$name" "$@"
  [ "$RC" -eq 0 ] || { fail "generate $name exited $RC"; sed 's/^/    /' "$WORK/$name.err" >&2; }
}
v1 official --v1_official
v1 tv005 --tv_weight=0.05
v1 default
shard="samples/shard-0-of-1.safetensors"
"$PSAQ_SAME_TENSORS" "$WORK/official/$shard" "$WORK/tv005/$shard" ||
  fail "--v1_official samples differ from --tv_weight=0.05's"
"$PSAQ_SAME_TENSORS" "$WORK/official/$shard" "$WORK/default/$shard" >/dev/null 2>&1 &&
  fail "--v1_official samples equal the default's (no TV term)"
grep -q '"w_tv": 0.05' "$WORK/official/report.json" || fail "official report does not record w_tv 0.05"

usage() {
  local name="$1" text="$2"
  shift 2
  run "$name" "$PSAQ" generate "$@"
  [ "$RC" -eq 2 ] || fail "$name: exit status $RC, expected 2"
  expect_in "$name" err "$text"
}
usage files "it applies to psaq quantize only" --model="$MODEL" --output_dir="$WORK/x" \
  --method=files --sample_files="$WORK/gen/samples"
usage bits "--w_bits applies to psaq quantize and the student of --method=v2 only" \
  --model="$MODEL" --output_dir="$WORK/x" --method=v1 --w_bits=4
usage warmup "--v2_image_warmup (10) must not exceed the image schedule's length (3 steps" \
  --model="$MODEL" --output_dir="$WORK/x" --method=v2 --v2_sample_iterations=3
usage eval "--eval_dataset is not a flag of 'psaq generate'" --model="$MODEL" \
  --output_dir="$WORK/x" --eval_dataset=fashion_mnist
usage official "--v1_official sets the paper's TV weight 0.05; leave out --tv_weight" \
  --model="$MODEL" --output_dir="$WORK/x" --method=v1 --v1_official --tv_weight=0
usage official_v2 "--v1_official applies to --method=v1 only" --model="$MODEL" \
  --output_dir="$WORK/x" --method=v2 --v1_official
finish
