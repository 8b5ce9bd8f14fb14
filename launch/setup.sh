# Shared by launch/test.sh and launch/demo.sh (sourced, not run): installs the missing Debian
# packages and builds psaq in Release. Safe to run any number of times.
#
# Environment:
#   PSAQ_BUILD_DIR   build directory (default: <repo>/build)
#   PSAQ_WERROR      ON to turn warnings in psaq's code into errors (CI sets it)
#   PSAQ_SKIP_APT    1 to never call apt-get (for machines managed otherwise, e.g. clusters)
#   CMAKE_PREFIX_PATH, PSAQ_CMAKE_ARGS  passed to CMake (e.g. an official LibTorch archive)

PSAQ_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PSAQ_BUILD_DIR="${PSAQ_BUILD_DIR:-$PSAQ_ROOT/build}"

# Debian packages psaq needs to build, test and run its demo (python3-numpy/-matplotlib: the
# results page, docs/results.py, and its test). OpenBLAS is not optional: without
# it Debian's libtorch falls back to the reference BLAS (about 10x slower matmuls).
PSAQ_PACKAGES=(
  build-essential cmake ccache
  libtorch-dev libopenblas0-openmp
  libopenmpi-dev openmpi-bin
  libgflags-dev libgoogle-glog-dev libgtest-dev
  nlohmann-json3-dev zlib1g-dev libstb-dev
  dataset-fashion-mnist
  python3-numpy python3-matplotlib
  python3-torchvision
)

# The reliability step (launch/check_reliability.sh): clang-14 with its sanitizer and libFuzzer
# runtimes, and llvm-14 for llvm-symbolizer (symbolised sanitizer reports).
PSAQ_RELIABILITY_PACKAGES=(clang-14 libclang-rt-14-dev llvm-14)

# python3-torchvision (0.14.1, built for Debian's LibTorch 1.13): its operator library
# (torchvision/_C*.so) gives the detector torchvision's RoIAlign and NMS; psaq falls back to
# its own ATen versions when it is absent.

psaq_log() { printf '[psaq setup] %s\n' "$*" >&2; }

# psaq_log_elapsed LABEL START: logs "LABEL: M min S s" for the time since START (a $SECONDS value).
psaq_log_elapsed() {
  local s=$((SECONDS - $2))
  psaq_log "$1: $((s / 60)) min $((s % 60)) s"
}

# psaq_install_packages PKG...: installs those not installed yet (needs root or sudo).
psaq_install_packages() {
  local missing=() p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  if [ "${PSAQ_SKIP_APT:-0}" = "1" ]; then
    psaq_log "missing packages (PSAQ_SKIP_APT=1, not installing): ${missing[*]}"
    return 1
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then sudo="sudo"; else
      psaq_log "need root to install: ${missing[*]}"; return 1
    fi
  fi
  psaq_log "installing: ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# psaq_python_venv VENV REQUIREMENTS: a virtual environment at VENV with the pinned PyPI packages
# of REQUIREMENTS; reinstalls only when the list changed since the last successful install.
psaq_python_venv() {
  local venv="$1" req="$2" stamp="$1/.requirements"
  if [ ! -x "$venv/bin/python3" ]; then
    psaq_log "creating $venv"
    python3 -m venv "$venv" || { psaq_log "python3 -m venv $venv failed"; return 1; }
  fi
  if ! cmp -s "$req" "$stamp"; then
    psaq_log "installing $(grep -v '^#' "$req" | tr '\n' ' ')into $venv"
    "$venv/bin/python3" -m pip install -q --disable-pip-version-check -r "$req" >&2 \
      || { psaq_log "pip install -r $req failed"; return 1; }
    cp "$req" "$stamp"
  fi
}

# psaq_python_oracles: a virtual environment at $PSAQ_ORACLE_VENV (default <repo>/.venv-oracles)
# with the pinned PyPI packages of launch/requirements-oracles.txt (pycocotools), for the tests
# that check psaq against a reference implementation. Prints nothing on stdout; exports
# PSAQ_ORACLE_PYTHON.
PSAQ_ORACLE_VENV="${PSAQ_ORACLE_VENV:-$PSAQ_ROOT/.venv-oracles}"
psaq_python_oracles() {
  psaq_python_venv "$PSAQ_ORACLE_VENV" "$PSAQ_ROOT/launch/requirements-oracles.txt" || return 1
  export PSAQ_ORACLE_PYTHON="$PSAQ_ORACLE_VENV/bin/python3"
}

# psaq_python_torch2: a virtual environment at $PSAQ_TORCH2_VENV (default <repo>/.venv-torch2) with
# launch/requirements-torch2.txt: PyPI's torch 2.11.0 (LibTorch 2.11 + CUDA 13.0 libraries, about
# 5 GB installed) and timm, for the LibTorch 2 build of launch/test.sh and the live timm parity
# test. Prints nothing on stdout; exports PSAQ_TORCH2_PYTHON and PSAQ_TORCH2_PREFIX (LibTorch's
# CMake prefix).
PSAQ_TORCH2_VENV="${PSAQ_TORCH2_VENV:-$PSAQ_ROOT/.venv-torch2}"
psaq_python_torch2() {
  psaq_python_venv "$PSAQ_TORCH2_VENV" "$PSAQ_ROOT/launch/requirements-torch2.txt" || return 1
  export PSAQ_TORCH2_PYTHON="$PSAQ_TORCH2_VENV/bin/python3"
  PSAQ_TORCH2_PREFIX="$("$PSAQ_TORCH2_PYTHON" -c 'import torch; print(torch.utils.cmake_prefix_path)')" \
    || { psaq_log "$PSAQ_TORCH2_PYTHON cannot import torch"; return 1; }
  export PSAQ_TORCH2_PREFIX
}

# psaq_torch2_cmake_args: after psaq_python_torch2, appends to PSAQ_CMAKE_ARGS what a build against
# the venv's LibTorch 2.11 + CUDA needs: its CMake prefix, the CUDA tensors and the NCCL
# communicator on (nvcc: PATH or /usr/local/cuda/bin, the CUDA 13 toolkit with NCCL), the venv as
# the live timm parity test's python, and the venv's torchvision operators (built for this
# LibTorch; Debian's are for 1.13 only) with what they need loaded first: the wheel's _C.so needs
# torch's libtorch_python.so, which needs the venv Python library's symbols
# (model/detect/torchvision_ops.h).
psaq_torch2_cmake_args() {
  local nvcc tv
  nvcc="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
  [ -x "$nvcc" ] || { psaq_log "no nvcc on PATH or at /usr/local/cuda/bin: the LibTorch 2 build needs the CUDA 13 toolkit (PSAQ_LIBTORCH=debian builds against Debian's CPU LibTorch 1.13 instead)"; return 1; }
  mapfile -t tv < <("$PSAQ_TORCH2_PYTHON" -c 'import glob, os, sysconfig, torch, torchvision
print(glob.glob(os.path.join(os.path.dirname(torchvision.__file__), "_C*.so"))[0])
print(os.path.join(sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")))
print(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_python.so"))')
  [ ${#tv[@]} -eq 3 ] || { psaq_log "$PSAQ_TORCH2_PYTHON cannot locate torchvision's operators"; return 1; }
  local f
  for f in "${tv[@]}"; do
    [ -f "$f" ] || { psaq_log "$f (torchvision's operators or a library they need) not found"; return 1; }
  done
  PSAQ_CMAKE_ARGS="${PSAQ_CMAKE_ARGS:-} -DCMAKE_PREFIX_PATH=$PSAQ_TORCH2_PREFIX -DCMAKE_CUDA_COMPILER=$nvcc
    -DPSAQ_WITH_CUDA=ON -DPSAQ_WITH_NCCL=ON -DPSAQ_TIMM_PYTHON=$PSAQ_TORCH2_PYTHON
    -DPSAQ_TORCHVISION_OPS=${tv[0]} -DPSAQ_TORCHVISION_OPS_PRELOAD=${tv[1]}:${tv[2]}"
}

# psaq_build [TARGET...]: configure and build in Release with all cores: the given targets (and
# what they link), or everything. The configure output goes to $PSAQ_BUILD_DIR/configure.log.
psaq_build() {
  local args=(-S "$PSAQ_ROOT" -B "$PSAQ_BUILD_DIR" -DCMAKE_BUILD_TYPE=Release)
  if [ "${PSAQ_WERROR:-OFF}" = "ON" ]; then args+=(-DPSAQ_WERROR=ON); fi
  if [ -n "${PSAQ_ORACLE_PYTHON:-}" ]; then args+=(-DPSAQ_ORACLE_PYTHON="$PSAQ_ORACLE_PYTHON"); fi
  # shellcheck disable=SC2206
  args+=(${PSAQ_CMAKE_ARGS:-})
  local log="$PSAQ_BUILD_DIR/configure.log" targets=()
  if [ $# -gt 0 ]; then targets=(--target "$@"); fi
  mkdir -p "$PSAQ_BUILD_DIR"
  psaq_log "configuring in $PSAQ_BUILD_DIR"
  cmake "${args[@]}" >"$log" 2>&1 || { cat "$log" >&2; return 1; }
  grep -E "^-- psaq " "$log" >&2 || true
  psaq_log "building ${*:-everything} with -j$(nproc)"
  cmake --build "$PSAQ_BUILD_DIR" -j"$(nproc)" "${targets[@]}"
}
