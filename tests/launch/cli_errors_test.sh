#!/usr/bin/env bash
# Under mpirun -np 2, a bad flag value, an unknown flag, another subcommand's flag, a missing model
# file and an unwritable output (eval --json_out, quantize --output_dir) each end the job with a
# clear one-line error and a non-zero status on every rank, without hanging; an error of several
# lines (weights lacking a tensor) keeps its detail, indented, from rank 0 on 1 and 2 ranks.
# (cli_usage_test.sh covers more usage errors on one rank.)
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"

MODEL="$GOLDEN/vit_fmnist.weights.safetensors"
read -r -a MPIRUN <<<"$PSAQ_MPIRUN"

# usage_error NAME EXPECTED-TEXT ARGS...: every rank exits 2 (recorded per rank by a wrapper that
# itself exits 0, so mpirun does not kill the other rank first), rank 0 alone prints one line.
usage_error() {
  local name="$1" text="$2"
  shift 2
  rm -f "$WORK/$name.rc."*
  run "$name" "${MPIRUN[@]}" -np 2 sh -c \
    '"$@"; echo $? >"'"$WORK/$name"'.rc.${OMPI_COMM_WORLD_RANK:-0}"' sh "$PSAQ" "$@"
  for rank in 0 1; do
    local rc
    rc=$(cat "$WORK/$name.rc.$rank" 2>/dev/null || echo missing)
    [ "$rc" = 2 ] || fail "$name: rank $rank exit status $rc, expected 2"
  done
  local lines
  lines=$(psaq_error_lines "$name" | wc -l)
  [ "$lines" -eq 1 ] || fail "$name: $lines error lines, expected exactly 1"
  expect_in "$name" err "$text"
}

usage_error bad_value "--batch_size must be >= 1, got 0" \
  eval --model="$MODEL" --dataset=fashion_mnist --batch_size=0
usage_error unknown_flag "unknown flag --batchsize" eval --model="$MODEL" --batchsize=8
usage_error quantize_bits "--a_bits must be 2-8, or 32 for no quantization, got 1" \
  quantize --model="$MODEL" --output_dir="$WORK/q" --a_bits=1
usage_error foreign_flag "--tensors is not a flag of 'psaq eval'" eval --model="$MODEL" --tensors
usage_error input_range "--input_range must be one of calibrated|pixel_box, got 'box'" \
  quantize --model="$MODEL" --output_dir="$WORK/q" --input_range=box
usage_error quantizer "--quantizer must be one of psaq|repq, got 'rep'" \
  quantize --model="$MODEL" --output_dir="$WORK/q" --quantizer=rep
# --dataset_dir is where --method=real and --eval_dataset=fashion_mnist read the IDX files.
usage_error dataset_dir_scope "--dataset_dir applies to --method=real and --eval_dataset only" \
  quantize --model="$MODEL" --output_dir="$WORK/q" --method=v1 --dataset_dir="$WORK"

# run_error NAME EXPECTED-TEXT ARGS...: a runtime error aborts the job: non-zero status, the
# reason on one line (no stack trace), at most one line per rank.
run_error() {
  local name="$1" text="$2"
  shift 2
  run "$name" "${MPIRUN[@]}" -np 2 "$PSAQ" "$@"
  [ "$RC" -ne 0 ] || fail "$name: exit status 0"
  local lines
  lines=$(psaq_error_lines "$name" | wc -l)
  { [ "$lines" -ge 1 ] && [ "$lines" -le 2 ]; } || fail "$name: $lines error lines, expected 1 (2 at most)"
  psaq_error_lines "$name" | grep -qF -- "$text" || fail "$name: no error line with '$text'"
  if grep -qE 'frame #|Exception raised from' "$WORK/$name.err"; then
    fail "$name: a stack trace was printed"
  fi
}

run_error missing_model "/nonexistent.safetensors: neither a preset name" \
  eval --model=/nonexistent.safetensors --dataset=fashion_mnist
run_error unwritable_json "--json_out=/proc/nope/x.json: cannot write there" \
  eval --model="$MODEL" --dataset=fashion_mnist --max_images=10 --json_out=/proc/nope/x.json
run_error eval_dataset_dir "/nonexistent: not a directory" \
  quantize --model="$MODEL" --output_dir="$WORK/q" --method=v1 --eval_dataset=fashion_mnist \
  --dataset_dir=/nonexistent
run_error quantize_missing_model "/nonexistent.safetensors: neither a preset name" \
  quantize --model=/nonexistent.safetensors --method=noise --output_dir="$WORK/q1"
run_error quantize_unwritable "/proc/nope/run" \
  quantize --model="$MODEL" --method=noise --num_samples=4 --output_dir=/proc/nope/run
run_error quantize_output_is_file "$MODEL: the output path exists and is not a directory" \
  quantize --model="$MODEL" --method=noise --num_samples=4 --output_dir="$MODEL"

# A multi-line error keeps its detail: the weights file lacks one tensor; the key that matters is
# on the lines after the summary, printed indented by rank 0 only (the other rank: one line).
python3 - "$MODEL" "$WORK/missing_key.safetensors" <<'PY' || fail "cannot write a weights file without head.bias"
import json, struct, sys
data = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header, body = json.loads(data[8:8 + n]), data[8 + n:]
out, blob = {}, b""
for name, entry in header.items():
    if name == "__metadata__":
        out[name] = entry
    elif name != "head.bias":
        begin, end = entry["data_offsets"]
        out[name] = dict(entry, data_offsets=[len(blob), len(blob) + end - begin])
        blob += body[begin:end]
text = json.dumps(out).encode()
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + blob)
PY
run missing_key_1 "$PSAQ" eval --model="$WORK/missing_key.safetensors" --dataset=fashion_mnist
[ "$RC" -eq 1 ] || fail "missing_key_1: exit status $RC, expected 1"
expect_in missing_key_1 err "psaq eval: error: $WORK/missing_key.safetensors: weights do not match the model (1 problem):"
grep -A2 -F "weights do not match the model" "$WORK/missing_key_1.err" | tail -2 >"$WORK/detail.txt"
printf '    missing keys (1):\n      head.bias\n' | cmp -s - "$WORK/detail.txt" ||
  { fail "missing_key_1: the detail is not the next two lines, indented:"; sed 's/^/    /' "$WORK/missing_key_1.err" >&2; }
run missing_key_2 "${MPIRUN[@]}" -np 2 "$PSAQ" eval --model="$WORK/missing_key.safetensors" \
  --dataset=fashion_mnist
[ "$RC" -ne 0 ] || fail "missing_key_2: exit status 0"
psaq_error_lines missing_key_2 | grep -qF "[rank 0/2] error: $WORK/missing_key.safetensors: weights do not match" ||
  fail "missing_key_2: no summary line from rank 0"
[ "$(grep -cx "      head.bias" "$WORK/missing_key_2.err")" -eq 1 ] ||
  { fail "missing_key_2: 'head.bias' not printed exactly once:"; sed 's/^/    /' "$WORK/missing_key_2.err" >&2; }
finish
