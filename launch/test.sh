#!/usr/bin/env bash
# Runs every psaq test: installs the missing Debian packages, builds in Release, then runs the
# unit, MPI and GPU tests (GPU tests skip themselves without a GPU) and the Slurm tests.
#   launch/test.sh                 everything
#   launch/test.sh -L unit         only a CTest label (unit | mpi | gpu | slurm | cli | docs | fuzz | timm | zoo)
# Extra arguments go to ctest. Exit status is non-zero when any test fails.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

# python3: the CLI tests read safetensors metadata with a few lines of it; python3-venv: the
# oracle environment (pycocotools) of psaq_python_oracles. The torch venv (PyPI torch + timm,
# launch/requirements-torch2.txt) is the live timm parity test's reference (model.timm_live_parity:
# timm builds random-weight models, this build loads and compares them).
psaq_install_packages "${PSAQ_PACKAGES[@]}" slurm-wlm munge libpmix-dev python3 python3-venv
psaq_python_oracles
psaq_python_torch2
PSAQ_CMAKE_ARGS="${PSAQ_CMAKE_ARGS:-} -DPSAQ_TIMM_PYTHON=$PSAQ_TORCH2_PYTHON"
psaq_build

psaq_log "running tests"
cd "$PSAQ_BUILD_DIR"
ctest --output-on-failure --timeout 1200 "$@"
