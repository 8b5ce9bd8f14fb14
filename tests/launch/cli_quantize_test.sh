#!/usr/bin/env bash
# psaq quantize under mpirun -np 2: V1 samples -> W4/A8 export with its manifest, samples and
# report, a summary with the evaluation, an export `psaq eval` scores the same; quantizing the
# written samples again (--method=files) gives the same tensors; a finished directory is refused
# without --overwrite; noise and real calibration run; a run killed during its evaluation says so
# in its report; bad flag combinations are usage errors.
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"
read -r -a MPIRUN <<<"$PSAQ_MPIRUN"
MODEL="$GOLDEN/vit_fmnist.weights.safetensors"
HANG_SECONDS=120
V1=(--method=v1 --num_samples=8 --samples_per_batch=4 --v1_epochs=1 --v1_iterations=6
    --v1_warmup=2 --w_bits=4 --a_bits=8 --seed=3)

run v1 "${MPIRUN[@]}" -np 2 "$PSAQ" quantize --model="$MODEL" "${V1[@]}" \
  --output_dir="$WORK/v1" --eval_dataset=fashion_mnist
if [ "$RC" -ne 0 ]; then
  fail "quantize v1 exited $RC"
  sed 's/^/    /' "$WORK/v1.err" >&2
else
  for f in model.safetensors model.manifest.json report.json samples/shard-0-of-2.safetensors \
           samples/shard-1-of-2.safetensors; do
    [ -s "$WORK/v1/$f" ] || fail "v1: $f missing"
  done
  [ -e "$WORK/v1/checkpoint" ] && fail "v1: the checkpoint directory of a finished run remains"
  expect_in v1 out "psaq quantize: complete"
  expect_in v1 out "psaq_v1 (W4/A8)"
  expect_in v1 out "8 over 2 rank(s), mpi"
  grep -q '"status": "complete"' "$WORK/v1/report.json" || fail "v1: report status is not complete"
  grep -q '"quantized": {' "$WORK/v1/report.json" || fail "v1: report has no evaluation"
  grep -q '"running"' "$WORK/v1/report.json" && fail "v1: report still says the evaluation runs"
  # The summary's quantized top-1 is what psaq eval measures on the export.
  summary_top1=$(grep -E '^ +top-1 quantized' "$WORK/v1.out" | grep -oE '[0-9]+\.[0-9]+%' | head -1)
  run eval_export "${MPIRUN[@]}" -np 2 "$PSAQ" eval --model="$WORK/v1/model.safetensors" \
    --dataset=fashion_mnist --sqnr_batches=0
  eval_top1=$(grep -E '^ *top-1 ' "$WORK/eval_export.out" | grep -oE '[0-9]+\.[0-9]+%' | head -1)
  [ -n "$summary_top1" ] && [ "$summary_top1" = "$eval_top1" ] ||
    fail "summary top-1 '$summary_top1' != psaq eval's '$eval_top1'"

  # The same samples, read back: the same export.
  run files "${MPIRUN[@]}" -np 2 "$PSAQ" quantize --model="$MODEL" --method=files \
    --sample_files="$WORK/v1/samples" --w_bits=4 --a_bits=8 --output_dir="$WORK/files"
  [ "$RC" -eq 0 ] || { fail "quantize files exited $RC"; sed 's/^/    /' "$WORK/files.err" >&2; }
  "$PSAQ_SAME_TENSORS" "$WORK/v1/model.safetensors" "$WORK/files/model.safetensors" ||
    fail "quantizing the written samples again gave another model"

  # A finished run is not overwritten by accident.
  run again "$PSAQ" quantize --model="$MODEL" "${V1[@]}" --output_dir="$WORK/v1"
  [ "$RC" -ne 0 ] || fail "a second run into a finished directory succeeded"
  expect_in again err "already holds a finished run"
fi

run noise "$PSAQ" quantize --model="$MODEL" --method=noise --num_samples=8 --output_dir="$WORK/noise"
[ "$RC" -eq 0 ] || { fail "quantize noise exited $RC"; sed 's/^/    /' "$WORK/noise.err" >&2; }
expect_in noise out "noise (W8/A8)"
# The same noise with --input_range=pixel_box: only the input's range changes, to the pixel box.
run noise_box "$PSAQ" quantize --model="$MODEL" --method=noise --num_samples=8 \
  --input_range=pixel_box --output_dir="$WORK/noise_box"
[ "$RC" -eq 0 ] || { fail "quantize noise_box exited $RC"; sed 's/^/    /' "$WORK/noise_box.err" >&2; }
grep -q '"input_range": "pixel_box"' "$WORK/noise_box/report.json" ||
  fail "noise_box: report.json does not record input_range pixel_box"
python3 - "$WORK/noise/model.manifest.json" "$WORK/noise_box/model.manifest.json" <<'PY' ||
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert (a["input_range"], b["input_range"]) == ("calibrated", "pixel_box"), "manifest input_range"
pre = b["preprocess"]
lo = min((0 - m) / s for m, s in zip(pre["mean"], pre["std"]))
hi = max((1 - m) / s for m, s in zip(pre["mean"], pre["std"]))
pa, pb = ({p["name"]: p for p in m["points"]} for m in (a, b))
box = (pb["input"]["min"], pb["input"]["max"])
assert abs(box[0] - lo) < 1e-6 and abs(box[1] - hi) < 1e-6, f"input range {box}, box {lo}, {hi}"
assert (pa["input"]["min"], pa["input"]["max"]) != box, "the noise's own range is the box"
changed = [n for n in pa if n != "input" and pa[n] != pb[n]]
assert not changed, f"other points changed: {changed}"
PY
  fail "noise_box: the manifests' input ranges are not calibrated vs pixel box"
# --quantizer=repq: recorded, and psaq inspect lists the log-sqrt(2) softmax points and RepQ's
# point set (a Linear input at 4 bits, a residual sum in float).
run noise_repq "$PSAQ" quantize --model="$MODEL" --method=noise --num_samples=8 --a_bits=4 \
  --quantizer=repq --output_dir="$WORK/noise_repq"
[ "$RC" -eq 0 ] || { fail "quantize noise_repq exited $RC"; sed 's/^/    /' "$WORK/noise_repq.err" >&2; }
expect_in noise_repq out "noise (W8/A4, repq, percentile ranges)"
grep -q '"quantizer": "repq"' "$WORK/noise_repq/report.json" ||
  fail "noise_repq: report.json does not record quantizer repq"
run inspect_repq "$PSAQ" inspect --file="$WORK/noise_repq/model.safetensors"
expect_in inspect_repq out "quantizer repq)"
expect_in inspect_repq out "blocks.0.attn.softmax"
grep -E "blocks\.0\.attn\.softmax .* log_sqrt2" "$WORK/inspect_repq.out" >/dev/null ||
  fail "inspect_repq: the softmax point is not listed with quantizer log_sqrt2"
grep -E "^ +blocks\.0\.attn\.av +4 " "$WORK/inspect_repq.out" >/dev/null ||
  fail "inspect_repq: blocks.0.attn.av (proj's input) is not listed at 4 bits"
grep -E "^ +blocks\.0\.add1 +32 " "$WORK/inspect_repq.out" >/dev/null ||
  fail "inspect_repq: blocks.0.add1 (a residual sum) is not listed at 32 bits"
# The activation observer: repq's own is RepQ's percentile search (above, recorded in the report
# and the file); --act_observer=minmax gives repq min/max ranges instead, psaq's default stays
# min/max; a name that is not an observer is refused, naming the flag.
grep -q '"act_observer": "percentile"' "$WORK/noise_repq/report.json" ||
  fail "noise_repq: report.json does not record act_observer percentile"
expect_in inspect_repq out "activation ranges percentile, quantizer repq)"
# repq_observer NAME OBSERVER LABEL: repq at W8/A4 with --act_observer=OBSERVER, its summary label,
# the observer recorded in the report and named by psaq inspect, and an export that is not the
# percentile search's.
repq_observer() {
  local name="$1" observer="$2" label="$3"
  run "$name" "$PSAQ" quantize --model="$MODEL" --method=noise --num_samples=8 --a_bits=4 \
    --quantizer=repq --act_observer="$observer" --output_dir="$WORK/$name"
  [ "$RC" -eq 0 ] || { fail "quantize $name exited $RC"; sed 's/^/    /' "$WORK/$name.err" >&2; }
  expect_in "$name" out "noise (W8/A4, $label)"
  grep -q "\"act_observer\": \"$observer\"" "$WORK/$name/report.json" ||
    fail "$name: report.json does not record act_observer $observer"
  run "inspect_$name" "$PSAQ" inspect --file="$WORK/$name/model.safetensors"
  expect_in "inspect_$name" out "activation ranges $observer, quantizer repq)"
  if cmp -s "$WORK/noise_repq/model.safetensors" "$WORK/$name/model.safetensors"; then
    fail "$name: the $observer export is the percentile search's"
  fi
}
repq_observer noise_minmax minmax "repq"
grep -q '"act_observer": "minmax"' "$WORK/noise_box/report.json" ||
  fail "noise_box: psaq's default observer is not minmax"
# --act_observer=mse: the percentile search continued over a dense set of clipping tails.
repq_observer noise_mse mse "repq, mse ranges"
# --fold_prior=layernorm: recorded; refused without repq.
run noise_prior "$PSAQ" quantize --model="$MODEL" --method=noise --num_samples=8 --a_bits=4 \
  --quantizer=repq --fold_prior=layernorm --output_dir="$WORK/noise_prior"
[ "$RC" -eq 0 ] || { fail "quantize noise_prior exited $RC"; sed 's/^/    /' "$WORK/noise_prior.err" >&2; }
expect_in noise_prior out "noise (W8/A4, repq, percentile ranges, layernorm prior)"
grep -q '"fold_prior": "layernorm"' "$WORK/noise_prior/report.json" ||
  fail "noise_prior: report.json does not record fold_prior layernorm"
run psaq_prior "$PSAQ" quantize --model="$MODEL" --method=noise --num_samples=8 \
  --fold_prior=layernorm --output_dir="$WORK/psaq_prior"
[ "$RC" -ne 0 ] || fail "psaq_prior: --fold_prior without repq was accepted"
expect_in psaq_prior err "--fold_prior=layernorm applies to --quantizer=repq only"
# --bits_overrides: single points at other bits than --w_bits/--a_bits, here the image at 8 bits
# in a W8/A4 repq run: in the label, the report and the export (psaq inspect); a malformed pair is
# refused by the flag's check, a name that is not a point of the model before any sample is made.
run noise_in8 "$PSAQ" quantize --model="$MODEL" --method=noise --num_samples=8 --a_bits=4 \
  --quantizer=repq --bits_overrides=input=8 --output_dir="$WORK/noise_in8"
[ "$RC" -eq 0 ] || { fail "quantize noise_in8 exited $RC"; sed 's/^/    /' "$WORK/noise_in8.err" >&2; }
expect_in noise_in8 out "noise (W8/A4 with input=8, repq, percentile ranges)"
grep -A2 '"bits_overrides"' "$WORK/noise_in8/report.json" | grep -q '"input": 8' ||
  fail "noise_in8: report.json does not record bits_overrides input=8"
run inspect_in8 "$PSAQ" inspect --file="$WORK/noise_in8/model.safetensors"
expect_in inspect_in8 out "29 activation points (4 bits: 13, 8 bits: 1, 32 bits: 15)"
grep -E "^ +input +8 " "$WORK/inspect_in8.out" >/dev/null ||
  fail "inspect_in8: the input point is not listed at 8 bits"
grep -E "^ +blocks\.0\.attn\.av +4 " "$WORK/inspect_in8.out" >/dev/null ||
  fail "inspect_in8: blocks.0.attn.av is not listed at --a_bits=4"
run bad_override "$PSAQ" quantize --model="$MODEL" --method=noise --num_samples=8 \
  --bits_overrides=input=9 --output_dir="$WORK/bad_override"
[ "$RC" -ne 0 ] || fail "bad_override: --bits_overrides=input=9 was accepted"
expect_in bad_override err "--bits_overrides 'input=9': the bit width must be 2..8 or 32"
run unknown_override "$PSAQ" quantize --model="$MODEL" --method=v1 --num_samples=8 \
  --bits_overrides=blocks.0.no_such=8 --output_dir="$WORK/unknown_override"
[ "$RC" -ne 0 ] || fail "unknown_override: an override naming no point was accepted"
expect_in unknown_override err "bits override 'blocks.0.no_such'"
if grep -q "v1 .*iter" "$WORK/unknown_override.err"; then
  fail "unknown_override: V1 ran before the override was refused"
fi
run bad_observer "$PSAQ" quantize --model="$MODEL" --method=noise --num_samples=8 \
  --act_observer=kl --output_dir="$WORK/bad_observer"
[ "$RC" -ne 0 ] || fail "bad_observer: --act_observer=kl was accepted"
expect_in bad_observer err "act_observer"
if [ -e "$WORK/bad_observer" ]; then fail "bad_observer: refused, but wrote $WORK/bad_observer"; fi
run real "$PSAQ" quantize --model="$MODEL" --method=real --dataset=fashion_mnist --num_samples=8 \
  --output_dir="$WORK/real"
[ "$RC" -eq 0 ] || { fail "quantize real exited $RC"; sed 's/^/    /' "$WORK/real.err" >&2; }
expect_in real out "real (W8/A8)"

# Killed during its evaluation: the report says the model is complete and the evaluation is
# running (not evaluated). The evaluation of 2 x 10,000 images leaves seconds to see the mark.
"$PSAQ" quantize --model="$MODEL" --method=noise --num_samples=8 --output_dir="$WORK/killed" \
  --eval_dataset=fashion_mnist >"$WORK/killed.out" 2>"$WORK/killed.err" &
pid=$!
for _ in $(seq $((HANG_SECONDS * 20))); do
  grep -qs '"running"' "$WORK/killed/report.json" || ! kill -0 "$pid" 2>/dev/null && break
  sleep 0.05
done
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
grep -q '"status": "complete"' "$WORK/killed/report.json" || fail "killed: report is not complete"
grep -q '"running"' "$WORK/killed/report.json" || fail "killed: no running evaluation in its report"
grep -q '"quantized": {' "$WORK/killed/report.json" && fail "killed: report has an evaluation"

# usage NAME TEXT ARGS...: status 2 and TEXT on stderr, before any work.
usage() {
  local name="$1" text="$2"
  shift 2
  run "$name" "$PSAQ" quantize "$@"
  [ "$RC" -eq 2 ] || fail "$name: exit status $RC, expected 2"
  expect_in "$name" err "$text"
}
usage no_output "--output_dir is required" --model="$MODEL"
usage bits "--w_bits must be 2-8, or 32" --model="$MODEL" --output_dir="$WORK/x" --w_bits=9
usage v2_knob "--v2_rounds applies to --method=v2 only" --model="$MODEL" --output_dir="$WORK/x" \
  --method=v1 --v2_rounds=3
usage v1_knob "--v1_iterations applies to --method=v1 only" --model="$MODEL" \
  --output_dir="$WORK/x" --v1_iterations=3
usage files "--method=files needs --sample_files" --model="$MODEL" --output_dir="$WORK/x" \
  --method=files
usage real "--method=real needs --dataset" --model="$MODEL" --output_dir="$WORK/x" --method=real
usage both "--resume and --overwrite exclude each other" --model="$MODEL" \
  --output_dir="$WORK/x" --resume --overwrite
usage jitter "--jitter_limits must be comma-separated pixel counts" --model="$MODEL" \
  --output_dir="$WORK/x" --method=v1 --jitter_limits=3,x
[ -e "$WORK/x" ] && fail "a refused command created its output directory"

# The shipped flagfiles parse (every flag known and valid): the run gets as far as the model
# (a detector's, whose flags apply to detectors only, as far as its evaluation set).
for flags in "$PSAQ_SOURCE_DIR"/cluster/flags/*.flags; do
  name="flagfile_$(basename "$flags" .flags)"
  if [[ "$name" == flagfile_maskrcnn* ]]; then
    real=()  # the calibration images of a --method=real flagfile
    if grep -qx -- "--method=real" "$flags"; then real=(--dataset=/nonexistent.json); fi
    run "$name" "$PSAQ" quantize --flagfile="$flags" \
      --model="$PSAQ_SOURCE_DIR/model/zoo/fmnist_maskrcnn.safetensors" \
      "${real[@]}" --eval_dataset=/nonexistent.json --output_dir="$WORK/$name"
    [ "$RC" -ne 0 ] && [ "$RC" -ne 2 ] || fail "$name: exit status $RC, expected a runtime error"
    expect_in "$name" err "/nonexistent.json"
    continue
  fi
  run "$name" "$PSAQ" quantize --flagfile="$flags" --model=/nonexistent.safetensors \
    --output_dir="$WORK/$name"
  [ "$RC" -ne 0 ] && [ "$RC" -ne 2 ] || fail "$name: exit status $RC, expected a runtime error"
  expect_in "$name" err "/nonexistent.safetensors: neither a preset name"
done
finish
