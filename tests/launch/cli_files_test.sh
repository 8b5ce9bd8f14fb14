#!/usr/bin/env bash
# Crafted model files (issue 18): psaq inspect, eval and quantize refuse each with one error line
# naming the file, status 1, no crash and no hang -- a header nesting 100,000 levels, 200,000
# tensor entries, a FIFO, a config far larger than its tensors, NaN or integer weights, a
# degenerate preprocessing std, export scales outside [2^-23, 1e8], and exports whose metadata or
# manifest psaq inspect cannot vouch for. The limits are in model/file_limits.h and the README.
source "$(dirname "${BASH_SOURCE[0]}")/cli_test_lib.sh"
: "${PSAQ_MAKE_EXPORT:?set PSAQ_MAKE_EXPORT to the make_test_export tool}"

MODEL="$GOLDEN/vit_fmnist.weights.safetensors"

# refused NAME TEXT ARGS...: psaq ARGS exits 1 (not a signal, not a hang) with exactly one error
# line, which contains TEXT.
refused() {
  local name="$1" text="$2"
  shift 2
  run "$name" "$PSAQ" "$@"
  [ "$RC" -eq 1 ] || fail "$name: exit status $RC, expected 1"
  local lines
  lines=$(psaq_error_lines "$name" | wc -l)
  [ "$lines" -eq 1 ] || fail "$name: $lines error lines, expected exactly 1"
  psaq_error_lines "$name" | grep -qF -- "$text" || {
    fail "$name: no error line with '$text'"
    sed 's/^/    /' "$WORK/$name.err" >&2
  }
}

# craft OUT EDIT [SOURCE]: rewrites SOURCE (default the golden model) into OUT after the Python
# statement EDIT, which may change `meta` (the metadata dict), `header` (name -> entry) and
# `data` (the bytearray data buffer); f32(name, index, value) sets one F32 element.
craft() {
  python3 - "$1" "$2" "${3:-$MODEL}" <<'PY' || fail "crafting $1 failed"
import json, struct, sys
out, edit, source = sys.argv[1:4]
with open(source, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    data = bytearray(f.read())
meta = header.pop("__metadata__", {})
def f32(name, index, value):
    struct.pack_into("<f", data, header[name]["data_offsets"][0] + 4 * index, value)
def set_config(key, value):
    config = json.loads(meta["config"])
    config[key] = value
    meta["config"] = json.dumps(config)
exec(edit)
header["__metadata__"] = meta
text = json.dumps(header).encode()
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + bytes(data))
PY
}

# --- The container: nesting, entry count, non-regular files --------------------------------------
python3 - "$WORK/deep.safetensors" "$WORK/many.safetensors" <<'PY' || fail "crafting failed"
import json, struct, sys
def write(path, text, data=b""):
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text.encode() + data)
n = 100000
write(sys.argv[1], '{"__metadata__": {"a": ' + "[" * n + "]" * n + "}}")
n = 200000  # 14 MB of header, within the 100 MB limit
write(sys.argv[2], "{" + ",".join('"t%d":{"dtype":"U8","shape":[1],"data_offsets":[%d,%d]}'
                                  % (i, i, i + 1) for i in range(n)) + "}", b"\0" * n)
PY
# These crashed (SIGSEGV) and hung (> 60 s) before.
refused deep_inspect "deep.safetensors: header JSON nests deeper than 64 levels" \
  inspect --file="$WORK/deep.safetensors"
refused deep_eval "deep.safetensors: header JSON nests deeper than 64 levels" \
  eval --model="$WORK/deep.safetensors" --dataset=fashion_mnist --max_images=8
refused deep_quantize "deep.safetensors: header JSON nests deeper than 64 levels" \
  quantize --model="$WORK/deep.safetensors" --method=noise --num_samples=4 \
  --output_dir="$WORK/q_deep"
refused many_inspect "many.safetensors: header lists 200000 entries, more than the 100000" \
  inspect --file="$WORK/many.safetensors"

mkfifo "$WORK/pipe.safetensors"
refused fifo_inspect "pipe.safetensors: not a regular file (a FIFO)" \
  inspect --file="$WORK/pipe.safetensors"
refused dir_inspect "$WORK: not a regular file (a directory)" inspect --file="$WORK"
refused fifo_eval "pipe.safetensors: neither a preset name" \
  eval --model="$WORK/pipe.safetensors" --dataset=fashion_mnist --max_images=8

# --- The model: config against the tensors, weights, preprocessing --------------------------------
craft "$WORK/wide.safetensors" 'set_config("embed_dim", 3000)'
refused wide_eval "wide.safetensors: the config describes a model of" \
  eval --model="$WORK/wide.safetensors" --dataset=fashion_mnist --max_images=8
craft "$WORK/deep_config.safetensors" 'set_config("depth", 10000000)'
refused deep_config_quantize "deep_config.safetensors: invalid config: the model would have" \
  quantize --model="$WORK/deep_config.safetensors" --method=noise --num_samples=4 \
  --output_dir="$WORK/q_deep_config"
craft "$WORK/nan.safetensors" 'f32("blocks.0.mlp.fc1.weight", 3, float("nan"))'
refused nan_eval "nan.safetensors: 1 tensor holds NaN or Inf values, first 'blocks.0.mlp.fc1.weight'" \
  eval --model="$WORK/nan.safetensors" --dataset=fashion_mnist --max_images=8
craft "$WORK/int.safetensors" 'header["norm.weight"]["dtype"] = "I32"'
refused int_eval "int.safetensors: tensor 'norm.weight' holds Int data" \
  eval --model="$WORK/int.safetensors" --dataset=fashion_mnist --max_images=8
craft "$WORK/std.safetensors" 'meta["preprocess"] = json.dumps({"std": 1e-300})'
refused std_eval "std.safetensors: invalid config: preprocess std must be in [0.001, 1000]" \
  eval --model="$WORK/std.safetensors" --dataset=fashion_mnist --max_images=8

# --- Quantized exports: scales, and what psaq inspect shows ----------------------------------------
EXPORT="$WORK/w4a8.safetensors"
run make "$PSAQ_MAKE_EXPORT" "$MODEL" "$EXPORT" 4 8
[ "$RC" -eq 0 ] && [ -f "$EXPORT" ] || { fail "make_test_export failed ($RC)"; finish; }
run inspect_ok "$PSAQ" inspect --file="$EXPORT"
[ "$RC" -eq 0 ] || fail "inspect of the sound export exited $RC"
expect_in inspect_ok out "checked       header and metadata, manifest when present; tensor values not read"

for value in 1e-45 3e38; do
  craft "$WORK/scale_$value.safetensors" "f32('head.weight.scale', 0, $value)" "$EXPORT"
  refused "scale_eval_$value" "'head.weight.scale' holds scales in [" \
    eval --model="$WORK/scale_$value.safetensors" --dataset=fashion_mnist --max_images=8
done

# Bits psaq cannot quantize to, a NaN scale and a reversed range in the manifest, and a manifest
# that contradicts its export: each was shown without a word.
craft "$WORK/w33.safetensors" 'meta["w_bits"] = "33"' "$EXPORT"
refused w33_inspect "w33.safetensors: metadata w_bits = '33' is not a bit width" \
  inspect --file="$WORK/w33.safetensors"
edit_manifest() {  # edit_manifest NAME EDIT: a copy of the export with an edited manifest
  cp "$EXPORT" "$WORK/$1.safetensors"
  python3 - "$WORK/w4a8.manifest.json" "$WORK/$1.manifest.json" "$2" <<'PY' || fail "editing $1"
import json, sys
m = json.load(open(sys.argv[1]))
points = m["points"]
weight = next(p for p in points if p["kind"] == "weight")
act = next(p for p in points if p["kind"] == "activation")
exec(sys.argv[3])
json.dump(m, open(sys.argv[2], "w"))
PY
}
edit_manifest nan_scale 'weight["scale_min"] = None'  # how JSON writes a NaN
refused nan_scale_inspect "nan_scale.manifest.json: point '" inspect --file="$WORK/nan_scale.safetensors"
edit_manifest reversed 'act["min"] = act["max"] + 1'
refused reversed_inspect "has min > max" inspect --file="$WORK/reversed.safetensors"
edit_manifest other 'm["a_bits"] = "4"'
refused other_inspect "other.manifest.json: disagrees with the export" \
  inspect --file="$WORK/other.safetensors"
finish
