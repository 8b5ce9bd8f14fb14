#!/usr/bin/env bash
# One-command check on a lent GPU machine (shared/docs/ENVIRONMENT.md: Ubuntu 24.04, one H100/H200,
# torch 2.x + CUDA in a venv, CMake 4, system Open MPI 4.1, NCCL; no gflags/glog).
#   launch/gpu_check.sh [--no-gpu] [--glog=auto|system|debs] OUT_DIR
# Steps, each logged to OUT_DIR/<step>.log and its outcome to OUT_DIR/summary.txt:
#   configure  CMake against the venv's LibTorch, PSAQ_WITH_CUDA=ON, PSAQ_WITH_NCCL=ON
#   build      psaq, fused_entropy_gpu_test, nccl_gpu_test
#   GPU steps (skipped with --no-gpu, which does everything else, e.g. on a CPU machine):
#   fused_entropy_gpu      the CUDA kernel against the CPU reference (gtest JSON beside the log)
#   nccl_2ranks            the NCCL communicator test on 2 ranks sharing GPU 0 (NCCL_HOSTID per
#                          rank: NCCL refuses two ranks on one GPU of one host)
#   bench_<model>_<dtype>  `psaq bench --device=cuda` (fp32; bf16 only if psaq bench has a
#                          --dtype flag) and launch/bench_timm.py (fp32, bf16), swin_small and
#                          deit_base at 224^2, batch 32
#   v2_2ranks              a short V2 quantize job (deit_tiny, W8/A8) on 2 ranks, into OUT_DIR/v2_job
# Exit status: 0 when every step that ran passed; 2 for bad arguments or missing prerequisites
# (one line naming what is missing), before anything is built.
# glog/gflags: --glog=system uses the installed ones; --glog=debs unpacks the .deb files of
# launch/fetch_gpu_debs.sh (gflags, glog, libunwind, and nlohmann-json and stb in case those are
# missing too) from $PSAQ_DEBS_DIR (default <repo>/.debs) into <build dir>/gl with
# dpkg -x (nothing is installed) and puts only that lib folder on LD_LIBRARY_PATH (never Debian's
# Open MPI: it clashes with the system PMIx); auto (default): system when CMake finds glog's
# config there, else debs.
# Environment: PSAQ_TORCH_PYTHON (default /opt/torch/.venv/bin/python3) with torch (and timm for the
# benchmarks), PSAQ_GPU_BUILD_DIR (default <repo>/build-gpu), PSAQ_DEBS_DIR, PSAQ_WERROR.
# Target: under 10 minutes on an H100/H200 machine (16 cores), most of it the build; each GPU step
# has its own timeout. Not yet run on a GPU machine: the GPU steps are untested.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage="usage: launch/gpu_check.sh [--no-gpu] [--glog=auto|system|debs] OUT_DIR"
die() { echo "gpu_check: $*" >&2; exit 2; }

NO_GPU=0 GLOG=auto OUT=""
for arg in "$@"; do
  case "$arg" in
    --no-gpu|--dry-run) NO_GPU=1 ;;
    --glog=auto|--glog=system|--glog=debs) GLOG="${arg#--glog=}" ;;
    --glog=*) die "--glog: '${arg#--glog=}' is not auto, system or debs" ;;
    -h|--help) echo "$usage"; exit 0 ;;
    -*) die "unknown option '$arg' ($usage)" ;;
    *) [ -z "$OUT" ] || die "one OUT_DIR expected, got '$OUT' and '$arg' ($usage)"; OUT="$arg" ;;
  esac
done
[ -n "$OUT" ] || die "missing OUT_DIR ($usage)"
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ]; then
  die "OUT_DIR '$OUT' exists and is not empty (results would mix with an earlier run)"
fi

# --- Prerequisites (each missing one is a one-line error, before any work) ---------------------
PYTHON="${PSAQ_TORCH_PYTHON:-/opt/torch/.venv/bin/python3}"
BUILD="${PSAQ_GPU_BUILD_DIR:-$ROOT/build-gpu}"
DEBS="${PSAQ_DEBS_DIR:-$ROOT/.debs}"
[ -x "$PYTHON" ] || die "PSAQ_TORCH_PYTHON: '$PYTHON' is not an executable python3 (the torch venv)"
# One interpreter start (importing torch takes seconds): LibTorch's CMake prefix, torch's CUDA
# version ("" for a CPU build), whether a GPU is usable, the versions for the summary.
mapfile -t PROBE < <("$PYTHON" - 2>/dev/null <<'PY'
import torch
try:
    import timm
    timm_version = timm.__version__
except ImportError:
    timm_version = ""
print(torch.utils.cmake_prefix_path)
print(torch.version.cuda or "")
print(int(torch.cuda.is_available()))
print(torch.__version__)
print(timm_version)
PY
)
[ "${#PROBE[@]}" -eq 5 ] || die "PSAQ_TORCH_PYTHON: '$PYTHON' cannot import torch"
TORCH_PREFIX="${PROBE[0]}" TORCH_CUDA="${PROBE[1]}" GPU_USABLE="${PROBE[2]}"
TORCH_VERSION="${PROBE[3]}" TIMM_VERSION="${PROBE[4]}"
[ -n "$TORCH_CUDA" ] \
  || die "PSAQ_TORCH_PYTHON: the torch of '$PYTHON' is a CPU build (torch.version.cuda is None)"
for tool in cmake mpirun mpicxx; do
  command -v "$tool" >/dev/null || die "'$tool' not found on PATH"
done
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
[ -x "$NVCC" ] || die "nvcc not found on PATH or at /usr/local/cuda/bin/nvcc"
if [ "$NO_GPU" = 0 ]; then
  [ "$GPU_USABLE" = 1 ] || die "no usable GPU (torch.cuda.is_available() is False); --no-gpu runs the rest"
  [ -n "$TIMM_VERSION" ] || die "PSAQ_TORCH_PYTHON: '$PYTHON' cannot import timm"
fi
GLOG_DEBS=(libgflags-dev libgflags2.2 libgoogle-glog-dev libgoogle-glog0v6 libunwind8
           libunwind-dev liblzma-dev nlohmann-json3-dev libstb-dev libstb0)
if [ "$GLOG" = auto ]; then
  GLOG=debs
  for f in /usr/lib/*/cmake/glog/glog-config.cmake /usr/{,local/}lib/cmake/glog/glog-config.cmake; do
    [ -e "$f" ] && GLOG=system
  done
fi
if [ "$GLOG" = debs ]; then
  command -v dpkg >/dev/null || die "--glog=debs needs dpkg (to unpack the .deb files)"
  for p in "${GLOG_DEBS[@]}"; do
    compgen -G "$DEBS/${p}_*.deb" >/dev/null \
      || die "PSAQ_DEBS_DIR: no ${p}_*.deb in '$DEBS' (launch/fetch_gpu_debs.sh downloads them)"
  done
fi

mkdir -p "$OUT" || die "cannot create OUT_DIR '$OUT'"
OUT="$(cd "$OUT" && pwd)"
SUMMARY="$OUT/summary.txt"
failed=0
# step NAME TIMEOUT_S CMD...: runs CMD with its output in OUT/NAME.log; one summary line.
step() {
  local name="$1" limit="$2" start=$SECONDS rc
  shift 2
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then
    printf '%-28s ok      %4d s\n' "$name" $((SECONDS - start)) >>"$SUMMARY"
  else
    printf '%-28s FAILED  %4d s  (exit %d, %s.log)\n' "$name" $((SECONDS - start)) $rc "$name" >>"$SUMMARY"
    failed=1
  fi
  return $rc
}
skip() { printf '%-28s skipped (%s)\n' "$1" "$2" >>"$SUMMARY"; }

{
  echo "psaq gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "torch/timm: torch $TORCH_VERSION CUDA $TORCH_CUDA timm ${TIMM_VERSION:-absent}"
  echo "nvcc: $("$NVCC" --version | tail -1); cmake: $(cmake --version | head -1); mpirun: $(mpirun --version 2>&1 | head -1)"
  if command -v nvidia-smi >/dev/null; then
    echo "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
  else
    echo "GPU: no nvidia-smi"
  fi
  echo "glog/gflags: $GLOG; build dir: $BUILD; mode: $([ "$NO_GPU" = 1 ] && echo --no-gpu || echo gpu)"
} >"$SUMMARY"

# --- Configure and build ------------------------------------------------------------------------
PREFIX="$TORCH_PREFIX"
CMAKE_ARGS=(-S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPSAQ_WITH_CUDA=ON -DPSAQ_WITH_NCCL=ON
            "-DCMAKE_CUDA_COMPILER=$NVCC")
# As launch/setup.sh: CI sets PSAQ_WERROR=ON (and the same flags let ccache reuse its objects).
[ "${PSAQ_WERROR:-OFF}" = ON ] && CMAKE_ARGS+=(-DPSAQ_WERROR=ON)
if [ "$GLOG" = debs ]; then
  GL="$BUILD/gl"
  rm -rf "$GL" && mkdir -p "$GL"
  for p in "${GLOG_DEBS[@]}"; do
    dpkg -x "$(compgen -G "$DEBS/${p}_*.deb" | head -1)" "$GL" || die "dpkg -x of $p failed"
  done
  PREFIX="$TORCH_PREFIX;$GL/usr"
  CMAKE_ARGS+=("-DCMAKE_MODULE_PATH=$GL/usr/share/glog/cmake")
  export LD_LIBRARY_PATH="$GL/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
CMAKE_ARGS+=("-DCMAKE_PREFIX_PATH=$PREFIX")
step configure 300 cmake "${CMAKE_ARGS[@]}" || { echo "gpu_check: configure failed ($OUT/configure.log)" >&2; cat "$SUMMARY"; exit 1; }
step build 1800 cmake --build "$BUILD" -j"$(nproc)" --target psaq fused_entropy_gpu_test nccl_gpu_test \
  || { echo "gpu_check: build failed ($OUT/build.log)" >&2; cat "$SUMMARY"; exit 1; }

# --- GPU steps ----------------------------------------------------------------------------------
PSAQ="$BUILD/launch/psaq"
MPIRUN=(mpirun -np 2 --oversubscribe)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)
# NCCL_HOSTID differs per rank, so NCCL lets two ranks share the one GPU (ENVIRONMENT.md).
PER_RANK_HOSTID=(bash -c 'NCCL_HOSTID="psaq-gpu-check-${OMPI_COMM_WORLD_RANK:-0}" exec "$@"' rank)
GPU_STEPS=(fused_entropy_gpu nccl_2ranks v2_2ranks)
for m in swin_small_patch4_window7_224 deit_base_patch16_224; do
  GPU_STEPS+=("bench_psaq_${m%%_patch*}_fp32" "bench_psaq_${m%%_patch*}_bf16"
              "bench_timm_${m%%_patch*}_fp32" "bench_timm_${m%%_patch*}_bf16")
done
if [ "$NO_GPU" = 1 ]; then
  for s in "${GPU_STEPS[@]}"; do skip "$s" "--no-gpu"; done
else
  step fused_entropy_gpu 300 "$BUILD/tests/fused_entropy_gpu_test" \
    --gtest_output="json:$OUT/fused_entropy_gpu.json"
  step nccl_2ranks 300 "${MPIRUN[@]}" "${PER_RANK_HOSTID[@]}" "$BUILD/tests/nccl_gpu_test"
  psaq_has_dtype=0
  "$PSAQ" bench --help 2>&1 | grep -q -- '--dtype' && psaq_has_dtype=1
  for m in swin_small_patch4_window7_224 deit_base_patch16_224; do
    short="${m%%_patch*}"
    step "bench_psaq_${short}_fp32" 300 "$PSAQ" bench --device=cuda --model="$m" --batch_size=32
    if [ "$psaq_has_dtype" = 1 ]; then
      step "bench_psaq_${short}_bf16" 300 "$PSAQ" bench --device=cuda --model="$m" --batch_size=32 --dtype=bf16
    else
      skip "bench_psaq_${short}_bf16" "psaq bench has no --dtype flag"
    fi
    for dt in fp32 bf16; do
      step "bench_timm_${short}_$dt" 300 "$PYTHON" "$ROOT/launch/bench_timm.py" --model "$m" \
        --batch 32 --dtype "$dt" --device cuda
    done
  done
  step v2_2ranks 300 "${MPIRUN[@]}" "${PER_RANK_HOSTID[@]}" "$PSAQ" quantize --device=cuda \
    --model=deit_tiny_patch16_224 --method=v2 --w_bits=8 --a_bits=8 --num_samples=8 --samples_per_batch=4 \
    --v2_rounds=2 --v2_sample_iterations=5 --v2_student_iterations=5 --v2_image_warmup=1 --output_dir="$OUT/v2_job"
  # The timing lines of every benchmark, side by side.
  { echo; echo "benchmarks (ms per step):"; grep -H -E 'ms' "$OUT"/bench_*.log 2>/dev/null | sed "s|$OUT/||"; } >>"$SUMMARY"
fi
printf 'total %d s, %s\n' "$SECONDS" "$([ $failed = 0 ] && echo 'all steps passed' || echo 'FAILED steps above')" >>"$SUMMARY"
cat "$SUMMARY"
exit $failed
