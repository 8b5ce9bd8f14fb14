#!/usr/bin/env bash
# Downloads the Debian packages that launch/gpu_check.sh unpacks on a GPU machine without gflags
# and glog (ENVIRONMENT.md: Ubuntu 24.04 with torch, CMake, Open MPI and NCCL, but no
# gflags/glog) into a git-ignored folder to carry there (default <repo>/.debs). Run it here, on
# Debian 12; it downloads only (apt-get download), installs nothing. Safe to run again.
#   launch/fetch_gpu_debs.sh [DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-$ROOT/.debs}"
# gflags and glog with their headers and CMake configs, what they link that Ubuntu's base image
# may lack (libunwind), and psaq's two other small dependencies, in case the machine lacks them
# too (nlohmann-json, stb_image). The list gpu_check.sh checks for: keep the two in step.
PACKAGES=(libgflags-dev libgflags2.2 libgoogle-glog-dev libgoogle-glog0v6 libunwind8 libunwind-dev
          liblzma-dev nlohmann-json3-dev libstb-dev libstb0)
mkdir -p "$DIR"
cd "$DIR"
if ! apt-get download "${PACKAGES[@]}" >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  apt-get download "${PACKAGES[@]}"
fi
ls -1 "$DIR"/*.deb
