#!/usr/bin/env bash
# psaq train --task=detect on tiny Fashion-MNIST scenes: the written detector records the command,
# seed, data checksums, per-epoch losses and validation AP (which detector_zoo_check reproduces); a run stopped by --max_steps leaves a
# checkpoint that --resume continues to exactly the uninterrupted run's weights; a leftover
# checkpoint without --resume, and bad flags or data, are one-line errors with a non-zero status.
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"
HANG_SECONDS=120

metadata() {
  python3 - "$1" "$2" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    print(json.loads(f.read(n))["__metadata__"][sys.argv[2]])
PY
}

run scenes_train "$PSAQ" make-scenes --split=train --num_images=8 --canvas_size=160 --seed=2 \
  --out_dir="$WORK/scenes"
[ "$RC" -eq 0 ] || { fail "make-scenes train exited $RC"; finish; }
run scenes_val "$PSAQ" make-scenes --split=val --num_images=4 --canvas_size=160 --seed=2 \
  --out_dir="$WORK/scenes"
[ "$RC" -eq 0 ] || { fail "make-scenes val exited $RC"; finish; }

# A tiny detector; 2 epochs of 2 steps.
CONFIG='{"embed_dim":8,"depths":[2,2,2,2],"num_heads":[1,1,2,2],"fpn_channels":16,"rpn_feat_channels":16,"fc_out_channels":32,"mask_conv_channels":16}'
TRAIN=(train --task=detect --config_json="$CONFIG" --dataset="$WORK/scenes/instances_train.json"
       --epochs=2 --global_batch_size=4 --warmup_epochs=0.5 --lr=1e-3 --seed=9 --batch_size=2
       --log_every=1)

run full "$PSAQ" "${TRAIN[@]}" --val_dataset="$WORK/scenes/instances_val.json" \
  --output="$WORK/full.safetensors"
[ "$RC" -eq 0 ] || { fail "training exited $RC"; sed 's/^/    /' "$WORK/full.err" >&2; finish; }
expect_in full out "val (4 images) box:"
[ "$(metadata "$WORK/full.safetensors" train_steps)" = 4 ] || fail "full: 2 epochs of 2 steps"
[ "$(metadata "$WORK/full.safetensors" train_seed)" = 9 ] || fail "full: seed"
[ "$(metadata "$WORK/full.safetensors" train_data_checksum)" = \
  "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["checksum"])' "$WORK/scenes/scenes_train.manifest.json")" ] ||
  fail "full: the training checksum is not the scenes manifest's"
metadata "$WORK/full.safetensors" val_box_ap | grep -qE '^[0-9]\.[0-9]{4}$' || fail "full: no val box AP"
metadata "$WORK/full.safetensors" val_mask_ap | grep -qE '^[0-9]\.[0-9]{4}$' || fail "full: no val mask AP"
[ "$(metadata "$WORK/full.safetensors" val_scenes)" = \
  '{"canvas_size":160,"num_images":4,"seed":2,"split":"val"}' ] || fail "full: val_scenes"
# The recorded val AP is what the shipped-detector CI check reproduces (it regenerates the val set
# from val_scenes and evaluates as psaq eval does).
run zoo_check "${PSAQ_DETECTOR_ZOO_CHECK:?}" "$WORK/full.safetensors"
[ "$RC" -eq 0 ] || { fail "detector_zoo_check on the trained detector exited $RC"; sed 's/^/    /' "$WORK/zoo_check.out" "$WORK/zoo_check.err" >&2; }
metadata "$WORK/full.safetensors" train_history | python3 -c '
import json, sys
h = json.load(sys.stdin)
assert [e["epoch"] for e in h] == [1, 2], h
assert all(e["loss"] > 0 and "loss_mask" in e for e in h), h' || fail "full: train_history"
metadata "$WORK/full.safetensors" train_command | grep -qE 'psaq train --task=detect .*--seed=9' ||
  fail "full: the recorded command"
[ ! -e "$WORK/full.safetensors.checkpoint" ] || fail "full: the checkpoint was left behind"

# Interrupted after 3 steps (mid-epoch 2), then resumed: the uninterrupted run's weights.
run part "$PSAQ" "${TRAIN[@]}" --max_steps=3 --checkpoint_steps=1 --output="$WORK/part.safetensors"
[ "$RC" -eq 0 ] || { fail "interrupted run exited $RC"; sed 's/^/    /' "$WORK/part.err" >&2; finish; }
expect_in part out "--resume continues"
[ -e "$WORK/part.safetensors.checkpoint/state.json" ] || fail "part: no checkpoint"
run again "$PSAQ" "${TRAIN[@]}" --output="$WORK/part.safetensors"
[ "$RC" -ne 0 ] || fail "again: a leftover checkpoint without --resume was accepted"
expect_in again err "pass --resume"
[ "$(psaq_error_lines again | wc -l)" -eq 1 ] || fail "again: not one error line"
run resume "$PSAQ" "${TRAIN[@]}" --resume --output="$WORK/part.safetensors"
[ "$RC" -eq 0 ] || { fail "resumed run exited $RC"; sed 's/^/    /' "$WORK/resume.err" >&2; finish; }
expect_in resume err "resumed at step 3"
"$PSAQ_SAME_TENSORS" "$WORK/full.safetensors" "$WORK/part.safetensors" ||
  fail "resume: the weights differ from the uninterrupted run's"
[ "$(metadata "$WORK/part.safetensors" train_steps)" = 4 ] || fail "resume: steps"

# Errors: one line naming the flag or file, non-zero status, nothing written.
bad() {  # NAME EXPECTED-STATUS EXPECTED-TEXT ARGS...
  local name="$1" status="$2" text="$3"
  shift 3
  run "$name" "$PSAQ" "${TRAIN[@]}" --output="$WORK/$name.safetensors" "$@"
  [ "$RC" -eq "$status" ] || fail "$name: exit $RC, expected $status"
  expect_in "$name" err "$text"
  [ "$(psaq_error_lines "$name" | wc -l)" -eq 1 ] || fail "$name: not one error line"
  [ ! -e "$WORK/$name.safetensors" ] || fail "$name: wrote a file"
}
bad schedule 2 "supports cosine only" --schedule=one_cycle
bad config 2 "--config_json" --config_json='{"embed_dim":0}'
bad config_key 2 "no_such_key" --config_json='{"no_such_key":1}'
bad warmup 2 "warmup_epochs" --warmup_epochs=2
bad clip 2 "clip_grad_norm" --clip_grad_norm=-1
bad task 2 "classify|detect" --task=segment
bad classifier_flag 2 "--arch does not apply to --task=detect" --arch=vit
bad classes 1 "num_classes is 3" --config_json='{"num_classes":3}'
bad val_missing 1 "nope.json" --val_dataset="$WORK/nope.json"
bad batch 1 "larger than the training set" --global_batch_size=9
finish
