#!/usr/bin/env bash
# The second build, run by .ci/run after launch/test.sh: psaq against PyPI's LibTorch 2.11 with
# CUDA 13.0 (launch/requirements-torch2.txt, installed into <repo>/.venv-torch2 by launch/setup.sh),
# with the CUDA tensors (PSAQ_WITH_CUDA=ON: the CUDA kernel dispatch and device code) and the NCCL
# communicator (PSAQ_WITH_NCCL=ON, /usr/local/cuda's NCCL) compiled and linked, warnings as
# errors, in its own build directory. It
#   1. builds every target;
#   2. runs every CTest test but the Slurm ones (labels unit, mpi, cli, docs, fuzz replays, gpu --
#      the GPU tests skip themselves without a GPU -- and timm: the live timm parity test,
#      tests/model/timm_live_parity_test.sh). The Slurm tests are left out: they exercise the
#      scheduler, the same with either LibTorch, and launch/test.sh runs them with the first build.
# No GPU is needed: LibTorch's CUDA build runs on the CPU.
# Time (2-core dev machine, 2026-12-06, shared with five other builds, so only CPU seconds
# compare): the venv installs in about 2 min (about 5 GB); a translation unit takes 1.2x the CPU
# time it takes with Debian's 1.13 (model/vit.cc 19.5 vs 16.3 s, gen/v1_generator.cc 15.3 vs
# 12.4 s), so the cold build costs about 1.2x the first build's; the live timm parity test used
# 74 CPU seconds (13 min wall on the loaded machine). 2026-12-06 21:35-23:00, load 7-8 from other
# builds: about 2 translation units a minute at -j2, the build still short of its last 49 of 279
# units at 22:49; the tests whose executables existed took (wall) model.unit 48 s, the dist, quant
# and gen MPI tests 3-6 s each. The build then finished (its last ~80 units: 1020 s user CPU,
# 44 min wall at load 6-8), and `ctest -LE slurm -E gpu_check` passed 58/58 in 930 s wall
# (OMP_NUM_THREADS=1, -j1). The whole step on a cold CI machine has not been measured yet.
#
#   launch/check_torch2.sh [CTEST ARGS...]   (default ctest selection: -LE slurm)
# Environment:
#   PSAQ_SKIP_TORCH2=1          skip the whole step (for local runs of .ci/run)
#   PSAQ_TORCH2_BUILD_DIR       the build directory (default <repo>/build-torch2)
#   PSAQ_TORCH2_VENV            the venv (default <repo>/.venv-torch2)
#   PSAQ_SKIP_APT, PSAQ_WERROR, PSAQ_CMAKE_ARGS   as for launch/setup.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

if [ "${PSAQ_SKIP_TORCH2:-0}" = "1" ]; then
  psaq_log "LibTorch 2 build skipped (PSAQ_SKIP_TORCH2=1)"
  exit 0
fi
if [ ! -x /usr/local/cuda/bin/nvcc ] && ! command -v nvcc >/dev/null; then
  psaq_log "check_torch2: no nvcc (CUDA 13 toolkit at /usr/local/cuda expected): cannot build with CUDA"
  exit 1
fi

psaq_install_packages "${PSAQ_PACKAGES[@]}" python3-venv
psaq_python_oracles
start=$SECONDS
psaq_python_torch2
psaq_log "torch venv ready in $((SECONDS - start)) s: $("$PSAQ_TORCH2_PYTHON" -c \
  'import torch, timm; print("torch", torch.__version__, "CUDA", torch.version.cuda, "timm", timm.__version__)')"

# The venv's torchvision operators (built for this LibTorch; Debian's are for 1.13 only), and what
# psaq loads before them: the wheel's _C.so needs torch's libtorch_python.so, which needs the
# symbols of the venv's Python library (model/detect/torchvision_ops.h).
mapfile -t tv < <("$PSAQ_TORCH2_PYTHON" -c 'import glob, os, sysconfig, torch, torchvision
print(glob.glob(os.path.join(os.path.dirname(torchvision.__file__), "_C*.so"))[0])
print(os.path.join(sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")))
print(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_python.so"))')
[ ${#tv[@]} -eq 3 ] || { psaq_log "check_torch2: $PSAQ_TORCH2_PYTHON cannot locate torchvision's operators"; exit 1; }
for f in "${tv[@]}"; do
  [ -f "$f" ] || { psaq_log "check_torch2: $f (torchvision's operators or a library they need) not found"; exit 1; }
done
PSAQ_BUILD_DIR="${PSAQ_TORCH2_BUILD_DIR:-$PSAQ_ROOT/build-torch2}"
PSAQ_CMAKE_ARGS="${PSAQ_CMAKE_ARGS:-} -DCMAKE_PREFIX_PATH=$PSAQ_TORCH2_PREFIX
  -DPSAQ_WITH_CUDA=ON -DPSAQ_WITH_NCCL=ON -DPSAQ_TIMM_PYTHON=$PSAQ_TORCH2_PYTHON
  -DPSAQ_TORCHVISION_OPS=${tv[0]} -DPSAQ_TORCHVISION_OPS_PRELOAD=${tv[1]}:${tv[2]}"
start=$SECONDS
psaq_build
psaq_log "LibTorch 2 build: $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s"

start=$SECONDS
cd "$PSAQ_BUILD_DIR"
status=0
if [ $# -eq 0 ]; then set -- -LE slurm; fi
ctest --output-on-failure --timeout 1200 "$@" || status=1
psaq_log "LibTorch 2 tests: $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s"
exit $status
