#!/usr/bin/env bash
# psaq quantize on a detector under mpirun -np 2: the shipped detector (model/zoo, small; random
# weights score AP 0, which would make the comparison empty) calibrated on noise and on 4 real
# make-scenes images writes exports whose `psaq eval` gives exactly the 24 box/mask numbers the
# job's report holds for them (on 8 val scenes), as do a tiny V2 job's (the student is the export)
# and a tiny V1 job's (samples of the shipped Swin classifier); 1 and 2 ranks give the same export
# (real);
# psaq inspect lists the points; psaq generate writes detector samples (a seeded random-init tiny
# detector from here on); bad flags and
# inputs (a bad scope, a scope on a classifier, repq on a detector, noise without --image_size, a
# classification set for a detector, v1 without or with a bad --v1_teacher, a bad or misplaced
# --v2_detector_discrepancy, a classifier's --v2_discrepancy, a real image that does not decode, a
# sample count beyond the machine's memory) are one error line and a non-zero exit on 2 ranks,
# without a hang. --method=files on detector samples; real images that do not decode skipped and
# counted with --on_bad_image=skip.
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"

: "${PSAQ_MAKE_DETECTOR:?set PSAQ_MAKE_DETECTOR to the make_test_detector binary}"
: "${PSAQ_SAME_TENSORS:?set PSAQ_SAME_TENSORS to the same_tensors binary}"
read -r -a MPIRUN <<<"$PSAQ_MPIRUN"
HANG_SECONDS=120
PY="${PSAQ_ORACLE_PYTHON:-python3}"

# A tiny detector that keeps every detection above 0.01 (random weights score ~1/11 per class).
CONFIG='{"embed_dim": 8, "depths": [2, 2, 2, 2], "num_heads": [1, 1, 2, 2],
  "fpn_channels": 16, "rpn_feat_channels": 16, "fc_out_channels": 32,
  "mask_conv_channels": 16, "num_classes": 10, "score_thr": 0.01, "mask_thr": 0.05,
  "max_per_img": 20}'
"$PSAQ_MAKE_DETECTOR" "$WORK/det.safetensors" 7 "$CONFIG" || fail "make_test_detector failed"
DET="$WORK/det.safetensors"

run train "$PSAQ" make-scenes --split=train --num_images=6 --canvas_size=160 --seed=2 \
  --out_dir="$WORK/train"
[ "$RC" -eq 0 ] || fail "make-scenes train exited $RC"
run val "$PSAQ" make-scenes --split=val --num_images=8 --canvas_size=160 --seed=1 \
  --out_dir="$WORK/val"
[ "$RC" -eq 0 ] || fail "make-scenes val exited $RC"
TRAIN="$WORK/train/instances_train.json"
VAL="$WORK/val/instances_val.json"

# same_ap NAME DIR: `psaq eval` on DIR's export gives the report's quantized box and mask stats.
same_ap() {
  local name="$1" dir="$2"
  run "eval_$name" "${MPIRUN[@]}" -np 2 "$PSAQ" eval --model="$dir/model.safetensors" \
    --dataset="$VAL" --json_out="$WORK/eval_$name.json"
  [ "$RC" -eq 0 ] || { fail "eval of the $name export exited $RC: $(tail -3 "$WORK/eval_$name.err")"; return; }
  run "cmp_$name" "$PY" -c '
import json, sys
report = json.load(open(sys.argv[1]))["evaluation"]["quantized"]
ev = json.load(open(sys.argv[2]))
names = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
box = [ev["box"][n] for n in names]
segm = [ev["segm"][n] for n in names]
# Equal, and not trivially (a float detector with AP 0 everywhere would compare nothing).
ok = box == report["box_stats"] and segm == report["mask_stats"] and box[0] > 0 and segm[0] > 0
print("report box", report["box_stats"][:3], "mask", report["mask_stats"][:3])
print("eval   box", box[:3], "mask", segm[:3])
sys.exit(0 if ok else 1)' "$dir/report.json" "$WORK/eval_$name.json"
  [ "$RC" -eq 0 ] || fail "$name: psaq eval on the export differs from the report: $(cat "$WORK/cmp_$name.out")"
}

SHIPPED="$PSAQ_SOURCE_DIR/model/zoo/fmnist_maskrcnn.safetensors"
# Noise, W8/A8, every part quantized.
run noise "${MPIRUN[@]}" -np 2 "$PSAQ" quantize --model="$SHIPPED" --method=noise --num_samples=4 \
  --samples_per_batch=2 --image_size=160 --output_dir="$WORK/noise" --eval_dataset="$VAL"
[ "$RC" -eq 0 ] || fail "noise quantize exited $RC: $(tail -3 "$WORK/noise.err")"
expect_in noise out "box/mask AP quantized"
expect_in noise out "FPN SQNR"
same_ap noise "$WORK/noise"
grep -qF '"quant_scope": "all"' "$WORK/noise/model.manifest.json" || fail "noise: manifest has no scope all"

# Real images, W4/A8, backbone and neck only; 1 rank and 2 ranks.
REAL=(--method=real --dataset="$TRAIN" --num_samples=4 --samples_per_batch=2 --w_bits=4
      --quant_scope=backbone_neck --seed=5)
run real2 "${MPIRUN[@]}" -np 2 "$PSAQ" quantize --model="$SHIPPED" "${REAL[@]}" \
  --output_dir="$WORK/real2" --eval_dataset="$VAL"
[ "$RC" -eq 0 ] || fail "real quantize (2 ranks) exited $RC: $(tail -3 "$WORK/real2.err")"
same_ap real "$WORK/real2"
grep -qF '"quant_scope": "backbone_neck"' "$WORK/real2/model.manifest.json" ||
  fail "real: manifest has no scope backbone_neck"
run real1 "$PSAQ" quantize --model="$SHIPPED" "${REAL[@]}" --output_dir="$WORK/real1"
[ "$RC" -eq 0 ] || fail "real quantize (1 rank) exited $RC: $(tail -3 "$WORK/real1.err")"
run same "$PSAQ_SAME_TENSORS" "$WORK/real1/model.safetensors" "$WORK/real2/model.safetensors"
[ "$RC" -eq 0 ] || fail "1 and 2 ranks wrote different exports: $(cat "$WORK/same.err")"

# V2: 4 samples at 64 px, 1 round of 1 sample and 1 student step, D on the FPN, RPN and RoI heads.
run v2 "${MPIRUN[@]}" -np 2 "$PSAQ" quantize --model="$SHIPPED" --method=v2 --num_samples=4 \
  --samples_per_batch=2 --image_size=64 --v2_rounds=1 --v2_sample_iterations=1 \
  --v2_student_iterations=1 --v2_warmup_iterations=1 --v2_image_warmup=0 \
  --v2_detector_discrepancy=fpn+rpn+roi --output_dir="$WORK/v2" --eval_dataset="$VAL"
[ "$RC" -eq 0 ] || fail "v2 quantize exited $RC: $(tail -3 "$WORK/v2.err")"
same_ap v2 "$WORK/v2"
grep -qF '"v2_student_steps"' "$WORK/v2/report.json" || fail "v2: report.json has no student phase"
grep -qF '"detector_discrepancy": "fpn+rpn+roi"' "$WORK/v2/report.json" ||
  fail "v2: report.json does not record the discrepancy"
[ -e "$WORK/v2/checkpoint" ] && fail "v2: the finished run left its checkpoint"

# V1: samples of the shipped Fashion-MNIST Swin classifier, mapped to 64 px detector inputs.
run v1 "${MPIRUN[@]}" -np 2 "$PSAQ" quantize --model="$SHIPPED" --method=v1 \
  --v1_teacher="$PSAQ_SOURCE_DIR/model/zoo/fmnist_swin.safetensors" --num_samples=4 \
  --samples_per_batch=2 --image_size=64 --v1_epochs=1 --v1_iterations=2 --v1_warmup=0 \
  --output_dir="$WORK/v1" --eval_dataset="$VAL"
[ "$RC" -eq 0 ] || fail "v1 quantize exited $RC: $(tail -3 "$WORK/v1.err")"
same_ap v1 "$WORK/v1"
run v1_shape "$PY" -c '
import json, struct, sys
f = open(sys.argv[1], "rb"); n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n))
shapes = [v["shape"] for k, v in h.items() if k != "__metadata__" and len(v["shape"]) == 4]
print(shapes)
sys.exit(0 if shapes == [[2, 3, 64, 64]] else 1)' "$WORK/v1/samples/shard-0-of-2.safetensors"
[ "$RC" -eq 0 ] || fail "v1: samples are not [2, 3, 64, 64]: $(cat "$WORK/v1_shape.out")"

# psaq inspect lists the export's points and scope.
run inspect "$PSAQ" inspect --file="$WORK/real2/model.safetensors"
[ "$RC" -eq 0 ] || fail "inspect of the detector export exited $RC: $(tail -3 "$WORK/inspect.err")"
expect_in inspect out "backbone_neck"
expect_in inspect out "roi_head.bbox_head.fc_cls.weight"
# ... and a float detector's under the quantizer flags.
run inspect_float "$PSAQ" inspect --file="$DET" --w_bits=4 --quant_scope=backbone
[ "$RC" -eq 0 ] || fail "inspect of the float detector exited $RC: $(tail -3 "$WORK/inspect_float.err")"
expect_in inspect_float out "W4A8"
grep -qE '^roi_head\.bbox_head\.fc_cls\.weight +weight +float +out' "$WORK/inspect_float.out" ||
  fail "inspect_float: fc_cls.weight is not listed as float, out of scope"
grep -qE '^backbone\.patch_embed\.projection\.weight +weight +4 +in' "$WORK/inspect_float.out" ||
  fail "inspect_float: the patch embedding is not listed at 4 bits, in scope"

# psaq generate on a detector writes its samples.
run gen "${MPIRUN[@]}" -np 2 "$PSAQ" generate --model="$DET" --method=noise --num_samples=2 \
  --image_size=64 --output_dir="$WORK/gen"
[ "$RC" -eq 0 ] || fail "generate exited $RC: $(tail -3 "$WORK/gen.err")"
[ -f "$WORK/gen/samples/shard-1-of-2.safetensors" ] || fail "generate wrote no shard 1"

# --method=files: the generated detector samples, quantized.
run files "${MPIRUN[@]}" -np 2 "$PSAQ" quantize --model="$DET" --method=files \
  --sample_files="$WORK/gen" --output_dir="$WORK/files"
[ "$RC" -eq 0 ] || fail "files quantize exited $RC: $(tail -3 "$WORK/files.err")"
[ -f "$WORK/files/model.safetensors" ] || fail "files: no export"
expect_in files out "2 over 2 rank(s)"

# Real images with two that do not decode (one whose header does not read, one cut short):
# refused naming one (default), or skipped and counted (--on_bad_image=skip: the set leaves the
# first out when it is opened, the second is replaced if the seeded order reaches it).
cp -r "$WORK/train" "$WORK/train_bad"
printf 'not a png' >"$WORK/train_bad/train/000002.png"  # left out when the set is opened
head -c 100 "$WORK/train/train/000005.png" >"$WORK/train_bad/train/000005.png"  # fails to decode
BAD_REAL=(quantize --model="$DET" --method=real --dataset="$WORK/train_bad/instances_train.json"
          --num_samples=4 --samples_per_batch=2 --seed=5)
run real_skip "${MPIRUN[@]}" -np 2 "$PSAQ" "${BAD_REAL[@]}" --on_bad_image=skip \
  --output_dir="$WORK/real_skip"
[ "$RC" -eq 0 ] || fail "real with --on_bad_image=skip exited $RC: $(tail -3 "$WORK/real_skip.err")"
run real_skip_count "$PY" -c '
import json, sys
n = json.load(open(sys.argv[1]))["metrics"]["real_images_skipped"]
print(n)
sys.exit(0 if n >= 1 else 1)' "$WORK/real_skip/report.json"
[ "$RC" -eq 0 ] || fail "real_skip: report counts no skipped image: $(cat "$WORK/real_skip_count.out")"

# Bad flags and inputs: one error line, non-zero exit, on 2 ranks.
bad() {
  local name="$1" text="$2"
  shift 2
  run "$name" "${MPIRUN[@]}" -np 2 "$PSAQ" "$@"
  [ "$RC" -ne 0 ] || fail "$name: exit status 0"
  local lines
  lines=$(psaq_error_lines "$name" | wc -l)
  { [ "$lines" -ge 1 ] && [ "$lines" -le 2 ]; } || fail "$name: $lines error lines, expected 1 (2 at most)"
  psaq_error_lines "$name" | grep -qF -- "$text" || fail "$name: no error line with '$text': $(tail -3 "$WORK/$name.err")"
}
bad bad_scope "--quant_scope must be one of backbone|backbone_neck|all, got 'heads'" \
  quantize --model="$DET" --method=noise --image_size=64 --output_dir="$WORK/b1" --quant_scope=heads
bad scope_classifier "--quant_scope applies to detector models only" \
  quantize --model="$GOLDEN/vit_fmnist.weights.safetensors" --method=noise \
  --output_dir="$WORK/b2" --quant_scope=backbone
bad v1_no_teacher "--method=v1 on a detector needs --v1_teacher" \
  quantize --model="$DET" --method=v1 --image_size=64 --output_dir="$WORK/b3"
bad v1_detector_teacher "--v1_teacher=$DET: is a detector; V1 needs a classification model" \
  quantize --model="$DET" --method=v1 --v1_teacher="$DET" --image_size=64 --output_dir="$WORK/b3"
printf 'not a model' >"$WORK/bad.safetensors"
bad v1_bad_teacher "--v1_teacher=$WORK/bad.safetensors: " \
  quantize --model="$DET" --method=v1 --v1_teacher="$WORK/bad.safetensors" --image_size=64 \
  --output_dir="$WORK/b3"
bad v2_bad_discrepancy "--v2_detector_discrepancy must be one of fpn|rpn|fpn+rpn|fpn+roi|fpn+rpn+roi, got 'box'" \
  quantize --model="$DET" --method=v2 --image_size=64 --v2_detector_discrepancy=box \
  --output_dir="$WORK/b3"
bad v2_discrepancy_classifier "--v2_detector_discrepancy applies to --method=v2 on a detector" \
  quantize --model="$GOLDEN/vit_fmnist.weights.safetensors" --method=v2 \
  --v2_detector_discrepancy=rpn --output_dir="$WORK/b3"
bad v2_classifier_discrepancy "--v2_discrepancy applies to classifiers" \
  quantize --model="$DET" --method=v2 --image_size=64 --v2_discrepancy=mse_features \
  --output_dir="$WORK/b3"
bad v2_size "--method=v2 on a detector needs --image_size" \
  quantize --model="$DET" --method=v2 --output_dir="$WORK/b3"
bad repq_detector "--quantizer=repq is not supported for detectors" \
  quantize --model="$DET" --method=noise --image_size=64 --quantizer=repq --output_dir="$WORK/b4"
bad noise_size "--method=noise on a detector needs --image_size" \
  quantize --model="$DET" --method=noise --output_dir="$WORK/b5"
bad v1_flag "--v1_epochs applies to --method=v1 only" \
  quantize --model="$DET" --method=noise --image_size=64 --v1_epochs=2 --output_dir="$WORK/b6"
bad real_classification_set "is a detector: calibrate it on a COCO instances JSON file" \
  quantize --model="$DET" --method=real --dataset=fashion_mnist --output_dir="$WORK/b7"
bad image_size_divisor "--image_size=100 is not a multiple of the detector's size divisor 32" \
  quantize --model="$DET" --method=noise --image_size=100 --output_dir="$WORK/b8"
bad real_bad_image "$WORK/train_bad/train/00000" "${BAD_REAL[@]}" --output_dir="$WORK/b9"
bad huge_samples "num_samples=1000000000000 needs " \
  quantize --model="$DET" --method=v2 --image_size=64 --num_samples=1000000000000 \
  --output_dir="$WORK/b10"
[ -e "$WORK/b10/samples" ] && fail "huge_samples: samples were written before the refusal"

finish
