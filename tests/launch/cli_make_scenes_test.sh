#!/usr/bin/env bash
# psaq make-scenes: a small set is written (PNGs, instances JSON, manifest with the checksum), the
# same seed gives the same bytes; bad flags are one usage line (status 2), an unusable
# Fashion-MNIST directory or output directory one error line (status 1).
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"

run first "$PSAQ" make-scenes --split=val --num_images=3 --seed=2 --out_dir="$WORK/a"
[ "$RC" -eq 0 ] || fail "make-scenes exited $RC"
expect_in first out "make-scenes val: 3 images"
for f in instances_val.json scenes_val.manifest.json val/000001.png val/000003.png; do
  [ -f "$WORK/a/$f" ] || fail "make-scenes did not write $f"
done
[ -e "$WORK/a/val/000004.png" ] && fail "make-scenes wrote a fourth image"
checksum="$(grep -o 'crc32:[0-9a-f]*' "$WORK/first.out")"
grep -qF "\"checksum\": \"$checksum\"" "$WORK/a/scenes_val.manifest.json" ||
  fail "the manifest does not record the printed checksum $checksum"

run second "$PSAQ" make-scenes --split=val --num_images=3 --seed=2 --out_dir="$WORK/b"
[ "$RC" -eq 0 ] || fail "second make-scenes exited $RC"
diff -r "$WORK/a" "$WORK/b" >/dev/null || fail "the same seed wrote different files"
run other_seed "$PSAQ" make-scenes --split=val --num_images=3 --seed=3 --out_dir="$WORK/c"
cmp -s "$WORK/a/instances_val.json" "$WORK/c/instances_val.json" && fail "seed 3 wrote seed 2's set"

# usage_error NAME EXPECTED-TEXT ARGS...
usage_error() {
  local name="$1" text="$2"
  shift 2
  run "$name" "$PSAQ" make-scenes "$@"
  [ "$RC" -eq 2 ] || fail "$name: exit status $RC, expected 2"
  [ "$(wc -l <"$WORK/$name.err")" -eq 1 ] || fail "$name: stderr is not exactly one line"
  expect_in "$name" err "$text"
}
usage_error no_out_dir "--out_dir is required" --split=val
usage_error no_split "--split=train|val is required" --out_dir="$WORK/d"
usage_error test_split "--split must be train or val" --split=test --out_dir="$WORK/d"
usage_error bad_split "--split must be one of test|train|val, got 'dev'" --split=dev --out_dir="$WORK/d"
usage_error zero_images "--num_images must be >= 1, got 0" --split=val --num_images=0 --out_dir="$WORK/d"
usage_error many_images "--num_images 200001: must be in [1, 200000]" --split=val \
  --num_images=200001 --out_dir="$WORK/d"
usage_error small_canvas "--canvas_size must be >= 160, got 100" --split=val --canvas_size=100 \
  --out_dir="$WORK/d"
usage_error foreign_flag "--model is not a flag of 'psaq make-scenes'" --split=val --model=x \
  --out_dir="$WORK/d"

run no_fmnist "$PSAQ" make-scenes --split=val --out_dir="$WORK/d" --dataset_dir="$WORK/none"
[ "$RC" -eq 1 ] || fail "missing Fashion-MNIST: exit status $RC, expected 1"
[ "$(psaq_error_lines no_fmnist | wc -l)" -eq 1 ] || fail "missing Fashion-MNIST: not one error line"
expect_in no_fmnist err "$WORK/none"

touch "$WORK/a_file"
run out_is_file "$PSAQ" make-scenes --split=val --num_images=1 --out_dir="$WORK/a_file"
[ "$RC" -eq 1 ] || fail "--out_dir a file: exit status $RC, expected 1"
[ "$(psaq_error_lines out_is_file | wc -l)" -eq 1 ] || fail "--out_dir a file: not one error line"
expect_in out_is_file err "$WORK/a_file"
finish
