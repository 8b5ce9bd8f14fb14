#!/usr/bin/env bash
# Crafted inputs end in one clear line, not a crash or a long silent allocation:
#   - --num_samples=10^12 is refused once the model's image size is known, naming the flag and
#     the bytes, before any sample is made (1 and 2 ranks);
#   - --on_bad_image applies to --method=real: skip replaces the undecodable image by a later one
#     of the seeded order and counts it (report.json, summary), fail stops naming the file
#     (generate and quantize, 1 and 2 ranks); it is refused where no image is decoded;
#   - images over the limits (a PNG header declaring 20000x20000, a 3 GB file named .png) are
#     undecodable images naming the file: skipped and counted, or the error.
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"
read -r -a MPIRUN <<<"$PSAQ_MPIRUN"
MODEL="$GOLDEN/vit_fmnist.weights.safetensors"

# json_field FILE KEY: the number after "KEY": in FILE.
json_field() { grep -oE "\"$2\": [0-9.e+-]+" "$1" | head -1 | sed -E 's/.*: //'; }

# runtime_error NAME TEXT CMD...: non-zero status, one or two psaq error lines (one per rank at
# most), one of them with TEXT.
runtime_error() {
  local name="$1" text="$2"
  shift 2
  run "$name" "$@"
  [ "$RC" -ne 0 ] || fail "$name: exit status 0"
  local lines
  lines=$(psaq_error_lines "$name" | wc -l)
  { [ "$lines" -ge 1 ] && [ "$lines" -le 2 ]; } || fail "$name: $lines error lines, expected 1 or 2"
  psaq_error_lines "$name" | grep -qF -- "$text" ||
    { fail "$name: no error line with '$text'"; sed 's/^/    /' "$WORK/$name.err" >&2; }
}

# --- --num_samples against memory ---------------------------------------------------------------
runtime_error huge_noise \
  "num_samples=1000000000000 needs 2852.2 TiB of memory per rank (1000000000000 samples of 1x28x28" \
  "$PSAQ" generate --model="$MODEL" --method=noise --num_samples=1000000000000 \
  --output_dir="$WORK/huge"
[ -e "$WORK/huge/samples" ] && fail "huge_noise: samples were written"
runtime_error huge_v1 "plus a batch of samples_per_batch=1000000000 with its Adam state" \
  "${MPIRUN[@]}" -np 2 "$PSAQ" quantize --model="$MODEL" --method=v1 \
  --num_samples=1000000000000 --samples_per_batch=1000000000 --output_dir="$WORK/huge_v1"

# --- --on_bad_image with --method=real ------------------------------------------------------------
# 1x1 grey PNGs (resized to the model's 28x28) and one corrupt file. With --seed=5 and 4 samples,
# b/5_bad.png is among the first 4 images of the seeded order (checked by the count below).
png() { echo "$1" | base64 -d >"$2"; }
BLACK=iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==
GREY=iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNoAAAAggCBd81ytgAAAABJRU5ErkJggg==
WHITE=iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGP4DwABAQEAsTj2FAAAAABJRU5ErkJggg==
mkdir -p "$WORK/train/a" "$WORK/train/b"
png "$BLACK" "$WORK/train/a/1.png"
png "$GREY" "$WORK/train/a/2.png"
png "$WHITE" "$WORK/train/a/3.png"
png "$GREY" "$WORK/train/a/4.png"
echo "not a png" >"$WORK/train/b/5_bad.png"
png "$WHITE" "$WORK/train/b/6.png"
png "$BLACK" "$WORK/train/b/7.png"
png "$GREY" "$WORK/train/b/8.png"
png "$WHITE" "$WORK/train/b/9.png"
REAL=(--model="$MODEL" --method=real --dataset="$WORK/train" --num_samples=4 --seed=5)

run real_skip_gen "$PSAQ" generate "${REAL[@]}" --on_bad_image=skip --output_dir="$WORK/gen"
[ "$RC" -eq 0 ] || { fail "generate --method=real --on_bad_image=skip exited $RC"; sed 's/^/    /' "$WORK/real_skip_gen.err" >&2; }
[ "$(json_field "$WORK/gen/report.json" real_images_skipped)" = 1 ] ||
  fail "real_skip_gen: report.json does not count 1 skipped image"
expect_in real_skip_gen err "skipping malformed image $WORK/train/b/5_bad.png"
expect_in real_skip_gen out "skipped images  1 that do not decode"
run real_skip_q "${MPIRUN[@]}" -np 2 "$PSAQ" quantize "${REAL[@]}" --on_bad_image=skip \
  --output_dir="$WORK/q"
[ "$RC" -eq 0 ] || { fail "quantize --method=real --on_bad_image=skip exited $RC"; sed 's/^/    /' "$WORK/real_skip_q.err" >&2; }
[ "$(json_field "$WORK/q/report.json" real_images_skipped)" = 1 ] ||
  fail "real_skip_q: report.json does not count 1 skipped image"

runtime_error real_fail "$WORK/train/b/5_bad.png: cannot decode image" \
  "${MPIRUN[@]}" -np 2 "$PSAQ" quantize "${REAL[@]}" --output_dir="$WORK/q_fail"
[ -e "$WORK/q_fail/report.json" ] && fail "real_fail: a report was written"
run skip_without_images "$PSAQ" generate --model="$MODEL" --method=v1 --on_bad_image=skip \
  --output_dir="$WORK/x"
[ "$RC" -eq 2 ] || fail "skip_without_images: exit status $RC, expected 2"
expect_in skip_without_images err "--on_bad_image applies to --method=real and --eval_dataset only"

# --- Images over the limits ----------------------------------------------------------------------
mkdir -p "$WORK/test/a" "$WORK/test/b"
png "$GREY" "$WORK/test/a/1.png"
png "$WHITE" "$WORK/test/b/2.png"
# A PNG signature and IHDR declaring 20000x20000 8-bit grey (no pixel data needed to be refused).
printf '\211PNG\r\n\032\n\000\000\000\015IHDR\000\000\116\040\000\000\116\040\010\000\000\000\000\000\000\000\000' \
  >"$WORK/test/a/huge.png"
truncate -s 3G "$WORK/test/b/big.png"  # sparse: no disk used
run limits_skip "$PSAQ" eval --model="$MODEL" --dataset="$WORK/test" --on_bad_image=skip \
  --json_out="$WORK/limits.json"
[ "$RC" -eq 0 ] || { fail "eval of the folder with --on_bad_image=skip exited $RC"; sed 's/^/    /' "$WORK/limits_skip.err" >&2; }
[ "$(json_field "$WORK/limits.json" skipped)" = 2 ] || fail "limits_skip: skipped != 2"
expect_in limits_skip err "$WORK/test/a/huge.png: image of 20000x20000 pixels, more than the 64 Mpixel"
expect_in limits_skip err "$WORK/test/b/big.png: file of 3,221,225,472 bytes, more than the 1.0 GiB"
runtime_error limits_fail "$WORK/test/a/huge.png: image of 20000x20000 pixels" \
  "$PSAQ" eval --model="$MODEL" --dataset="$WORK/test"
finish
