#!/usr/bin/env bash
# psaq eval of the golden Fashion-MNIST model on the first 300 test images gives the same counts
# on 1 and 2 ranks (JSON output); on an ImageFolder with a corrupt file, --on_bad_image=skip
# counts it and --on_bad_image=fail stops the job naming it, on 2 ranks, without hanging.
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"

MODEL="$GOLDEN/vit_fmnist.weights.safetensors"
read -r -a MPIRUN <<<"$PSAQ_MPIRUN"

# json_field FILE KEY: the number after "KEY": in FILE.
json_field() { grep -oE "\"$2\": [0-9.e+-]+" "$1" | head -1 | sed -E 's/.*: //'; }

for np in 1 2; do
  run "fmnist_np$np" "${MPIRUN[@]}" -np "$np" "$PSAQ" eval --model="$MODEL" \
    --dataset=fashion_mnist --max_images=300 --batch_size=32 --json_out="$WORK/np$np.json"
  [ "$RC" -eq 0 ] || { fail "eval on $np rank(s) exited $RC"; sed 's/^/    /' "$WORK/fmnist_np$np.err" >&2; }
  [ -f "$WORK/np$np.json" ] || fail "eval on $np rank(s) wrote no JSON"
done
expect_in fmnist_np1 out "top-1"
[ "$(json_field "$WORK/np1.json" images)" = 300 ] || fail "np1: images != 300"
for np in 2; do
  for key in images top1_correct top5_correct skipped; do
    a=$(json_field "$WORK/np1.json" $key)
    b=$(json_field "$WORK/np$np.json" $key)
    [ -n "$a" ] && [ "$a" = "$b" ] || fail "$key: $a on 1 rank, $b on $np ranks"
  done
  [ "$(json_field "$WORK/np$np.json" ranks)" = "$np" ] || fail "np$np.json does not record $np ranks"
done

# An ImageFolder of 1x1 grey PNGs (resized to the model's 28x28) with one corrupt file.
png() { echo "$1" | base64 -d >"$2"; }
BLACK=iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==
GREY=iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNoAAAAggCBd81ytgAAAABJRU5ErkJggg==
WHITE=iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGP4DwABAQEAsTj2FAAAAABJRU5ErkJggg==
mkdir -p "$WORK/folder/a" "$WORK/folder/b"
png "$BLACK" "$WORK/folder/a/1.png"
png "$GREY" "$WORK/folder/a/2.png"
echo "not a png" >"$WORK/folder/b/3_bad.png"
png "$WHITE" "$WORK/folder/b/4.png"
png "$GREY" "$WORK/folder/b/5.png"

run folder_skip "${MPIRUN[@]}" -np 2 "$PSAQ" eval --model="$MODEL" --dataset="$WORK/folder" \
  --batch_size=2 --on_bad_image=skip --json_out="$WORK/skip.json"
[ "$RC" -eq 0 ] || { fail "eval --on_bad_image=skip exited $RC"; sed 's/^/    /' "$WORK/folder_skip.err" >&2; }
[ "$(json_field "$WORK/skip.json" images)" = 4 ] || fail "skip: images != 4"
[ "$(json_field "$WORK/skip.json" skipped)" = 1 ] || fail "skip: skipped != 1"
expect_in folder_skip err "3_bad.png"

run folder_fail "${MPIRUN[@]}" -np 2 "$PSAQ" eval --model="$MODEL" --dataset="$WORK/folder" \
  --batch_size=2 --on_bad_image=fail
[ "$RC" -ne 0 ] || fail "eval --on_bad_image=fail exited 0"
psaq_error_lines folder_fail | grep -qF "3_bad.png" || fail "fail: no error line naming 3_bad.png"
finish
