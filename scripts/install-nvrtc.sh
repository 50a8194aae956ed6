#!/usr/bin/env bash
# Installs NVIDIA's run-time CUDA compiler (NVRTC) without CUDA: PyPI's
# `nvidia-cuda-nvrtc` wheel ships `libnvrtc.so` for Linux. It needs no GPU
# and no driver, so chapter 07's kernels are compiled (and their warnings
# caught) on any Linux machine.
#
# The version is pinned to 13.0, the CUDA of the GPU machines' driver
# (580): PTX carries a `.version` (its ISA version), and a driver refuses
# PTX newer than it knows. NVRTC 13.0 writes PTX ISA 9.0, which driver 580
# loads; a newer NVRTC would write a newer `.version`.
#
# Usage: scripts/install-nvrtc.sh            (venv in target/nvrtc-venv)
#        NVRTC_VENV=/some/dir scripts/install-nvrtc.sh
# It prints the line to `export`: cudarc opens the library with dlopen by
# name (`libnvrtc.so`, `libnvrtc.so.13`, ...), so its folder must be on
# LD_LIBRARY_PATH when the program starts. Chapter 07 also accepts
# CANDLE_NVRTC=/path/to/libnvrtc.so.13 and opens that file first.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${NVRTC_VENV:-$ROOT/target/nvrtc-venv}"
VERSION="${NVRTC_VERSION:-13.0.88}"

if [ ! -x "$VENV/bin/python" ]; then
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "nvidia-cuda-nvrtc==$VERSION"

LIB="$(find "$VENV" -name 'libnvrtc.so.[0-9]*' | sort | head -n 1)"
if [ -z "$LIB" ]; then
    echo "install-nvrtc: no libnvrtc.so found under $VENV" >&2
    exit 1
fi
DIR="$(dirname "$LIB")"
# cudarc looks for `libnvrtc.so` first; the wheel may ship only the
# versioned name, so give it the plain one too.
[ -e "$DIR/libnvrtc.so" ] || ln -s "$(basename "$LIB")" "$DIR/libnvrtc.so"
echo "NVRTC $VERSION installed in $DIR"
echo "export LD_LIBRARY_PATH=$DIR\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
