#!/usr/bin/env bash
# Runs every psaq test: installs the missing Debian packages and PyPI venvs, builds in Release,
# then runs the unit, MPI, CLI, docs, timm and GPU tests (GPU tests skip themselves without a GPU)
# and the Slurm tests.
#   launch/test.sh                 everything
#   launch/test.sh -L unit         only a CTest label (unit | mpi | gpu | slurm | cli | docs | fuzz | timm | zoo)
# Extra arguments go to ctest. Exit status is non-zero when any test fails.
# Environment (besides launch/setup.sh's):
#   PSAQ_LIBTORCH=pypi (default)  build against PyPI's LibTorch 2.11 + CUDA 13.0 (the torch wheel in
#                   .venv-torch2, launch/requirements-torch2.txt) with the CUDA tensors and the NCCL
#                   communicator compiled and linked (needs nvcc 13: /usr/local/cuda), into
#                   build-torch2/ unless PSAQ_BUILD_DIR says otherwise. Runs on the CPU.
#   PSAQ_LIBTORCH=debian          build against Debian's CPU LibTorch 1.13 (libtorch-dev) into build/.
#                   CI builds 1.13 too: launch/check_reliability.sh's sanitizer build.
# The torch venv is also the live timm parity test's reference in either build
# (model.timm_live_parity: timm builds random-weight models, this build loads and compares them).
set -euo pipefail
PSAQ_LIBTORCH="${PSAQ_LIBTORCH:-pypi}"
case "$PSAQ_LIBTORCH" in
  pypi) PSAQ_BUILD_DIR="${PSAQ_BUILD_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build-torch2}" ;;
  debian) ;;
  *) echo "launch/test.sh: PSAQ_LIBTORCH='$PSAQ_LIBTORCH' is not pypi or debian" >&2; exit 2 ;;
esac
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

# python3: the CLI tests read safetensors metadata with a few lines of it; python3-venv: the
# oracle environment (pycocotools) of psaq_python_oracles and the torch venv.
psaq_install_packages "${PSAQ_PACKAGES[@]}" slurm-wlm munge libpmix-dev python3 python3-venv
psaq_python_oracles
start=$SECONDS
psaq_python_torch2
psaq_log "torch venv ready in $((SECONDS - start)) s: $("$PSAQ_TORCH2_PYTHON" -c \
  'import torch, timm; print("torch", torch.__version__, "CUDA", torch.version.cuda, "timm", timm.__version__)')"
if [ "$PSAQ_LIBTORCH" = pypi ]; then
  psaq_torch2_cmake_args
else
  PSAQ_CMAKE_ARGS="${PSAQ_CMAKE_ARGS:-} -DPSAQ_TIMM_PYTHON=$PSAQ_TORCH2_PYTHON"
fi
start=$SECONDS
psaq_build
psaq_log_elapsed "build ($PSAQ_LIBTORCH LibTorch)" $start

psaq_log "running tests"
start=$SECONDS
cd "$PSAQ_BUILD_DIR"
status=0
ctest --output-on-failure --timeout 1200 "$@" || status=1
psaq_log_elapsed tests $start
exit $status
