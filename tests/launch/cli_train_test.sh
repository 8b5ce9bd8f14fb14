#!/usr/bin/env bash
# psaq train on a tiny ImageFolder: 1 and 2 ranks write a weights file whose metadata records the
# command (with "mpirun -np 2"), the data checksums and a test top-1 that `psaq eval` of the file
# reproduces; bad flag combinations are one-line usage errors (status 2) before any work.
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"
read -r -a MPIRUN <<<"$PSAQ_MPIRUN"

# json_field FILE KEY: the number after "KEY": in FILE.
json_field() { grep -oE "\"$2\": [0-9.e+-]+" "$1" | head -1 | sed -E 's/.*: //'; }
# metadata FILE KEY: the value of a safetensors metadata entry, as `psaq inspect` cannot show all.
metadata() {
  python3 - "$1" "$2" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    print(json.loads(f.read(n))["__metadata__"][sys.argv[2]])
PY
}

# Two classes of 1x1 PNGs (resized to 28x28): black/grey in "dark", white/grey in "light".
png() { echo "$1" | base64 -d >"$2"; }
BLACK=iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==
GREY=iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNoAAAAggCBd81ytgAAAABJRU5ErkJggg==
WHITE=iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGP4DwABAQEAsTj2FAAAAABJRU5ErkJggg==
mkdir -p "$WORK/folder/dark" "$WORK/folder/light"
for i in 1 2 3; do
  png "$BLACK" "$WORK/folder/dark/b$i.png"
  png "$WHITE" "$WORK/folder/light/w$i.png"
done
png "$GREY" "$WORK/folder/dark/g.png"
png "$GREY" "$WORK/folder/light/g.png"

CONFIG='{"img_size":28,"patch_size":7,"in_chans":1,"num_classes":2,"embed_dim":16,"depth":1,"num_heads":2}'
TRAIN=(train --arch=vit --config_json="$CONFIG" --dataset="$WORK/folder"
       --eval_dataset="$WORK/folder" --epochs=3 --global_batch_size=4 --warmup_epochs=0
       --lr=3e-3 --seed=7 --batch_size=3)

for np in 1 2; do
  run "train_np$np" "${MPIRUN[@]}" -np "$np" "$PSAQ" "${TRAIN[@]}" --output="$WORK/np$np.safetensors"
  [ "$RC" -eq 0 ] || { fail "train on $np rank(s) exited $RC"; sed 's/^/    /' "$WORK/train_np$np.err" >&2; continue; }
  expect_in "train_np$np" out "test top-1"
  expect_in "train_np$np" out "train top-1"
  [ "$(metadata "$WORK/np$np.safetensors" train_world_size)" = "$np" ] || fail "np$np: world size"
  [ "$(metadata "$WORK/np$np.safetensors" train_steps)" = 6 ] || fail "np$np: 3 epochs of 2 steps"
  metadata "$WORK/np$np.safetensors" train_data_checksum | grep -qE '^crc32:[0-9a-f]{8}$' ||
    fail "np$np: no training-data checksum"
  # The recorded top-1 is what psaq eval measures on the written file.
  run "eval_np$np" "$PSAQ" eval --model="$WORK/np$np.safetensors" --dataset="$WORK/folder" \
    --json_out="$WORK/eval$np.json"
  [ "$RC" -eq 0 ] || { fail "eval of np$np exited $RC"; sed 's/^/    /' "$WORK/eval_np$np.err" >&2; continue; }
  recorded=$(metadata "$WORK/np$np.safetensors" test_top1)
  measured=$(awk -v f="$(json_field "$WORK/eval$np.json" top1)" 'BEGIN { printf "%.2f", 100 * f }')
  [ "$recorded" = "$measured" ] || fail "np$np: recorded top-1 $recorded, psaq eval $measured"
done
metadata "$WORK/np2.safetensors" train_command | grep -qE '^mpirun -np 2 .*psaq train .*--seed=7' ||
  fail "np2: the recorded command is not 'mpirun -np 2 ... psaq train ... --seed=7'"

# Usage errors: one line, status 2, nothing written.
usage_error() {  # NAME EXPECTED-TEXT ARGS...
  local name="$1" text="$2"
  shift 2
  run "$name" "$PSAQ" "${TRAIN[@]}" --output="$WORK/$name.safetensors" "$@"
  [ "$RC" -eq 2 ] || fail "$name: exit $RC, expected 2"
  expect_in "$name" err "$text"
  [ ! -e "$WORK/$name.safetensors" ] || fail "$name: wrote a file"
}
usage_error no_arch "--arch is required" --arch=
usage_error dropout "no dropout or drop-path" \
  --config_json='{"img_size":28,"patch_size":7,"in_chans":1,"num_classes":2,"drop_path_rate":0.1}'
usage_error warmup "warmup_epochs" --warmup_epochs=3
usage_error bad_mean "is not a number" --mean=0.2,x
usage_error bad_schedule "must be one of cosine|one_cycle" --schedule=step
usage_error detect_flag "--val_dataset does not apply to --task=classify" --val_dataset=x.json
finish
