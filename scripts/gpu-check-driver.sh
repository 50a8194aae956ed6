#!/usr/bin/env bash
# The GPU checks of chapter 07's driver side, in two steps:
#
#   scripts/gpu-check-driver.sh prepare   # here: needs cargo (and NVRTC for the fused PTX)
#   scripts/gpu-check-driver.sh run       # on the GPU machine: no cargo needed
#
# `prepare` builds chapter 07's test programs and copies them, stripped, to
# target/gpu-driver-check/bin, and writes the PTX of the generated fused
# kernels to target/gpu-driver-check/fused-ptx (a GPU machine may have no
# NVRTC). Carry `target/gpu-driver-check` to the GPU machine; `run` runs
# the driver tests there, one thread at a time, and the sticky-error test
# last (it breaks its own process's CUDA context, on purpose).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="$ROOT/target/gpu-driver-check"
case "${1:-}" in
prepare)
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
    rm -rf "$DIR" && mkdir -p "$DIR/bin" "$DIR/fused-ptx"
    cd "$ROOT"
    cargo test -p chapter-07 --no-run --message-format=json 2>/dev/null \
        | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])
' | while read -r name exe; do
        case "$name" in
        driver*) cp "$exe" "$DIR/bin/$name" && strip "$DIR/bin/$name" ;;
        esac
    done
    CANDLE_FUSED_PTX_DIR="$DIR/fused-ptx" cargo test -p chapter-07 --test codegen \
        codegen_kernels_compile_with_nvrtc -- --nocapture
    du -sh "$DIR"
    ls "$DIR/bin"
    ;;
run)
    nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv || true
    # NVRTC and cuBLAS, if the machine has them anywhere (pip wheels do).
    for lib in libnvrtc.so.13 libcublas.so.13; do
        found="$(find /opt /usr /root "$ROOT/target" -name "$lib" 2>/dev/null | head -n 1 || true)"
        if [ -n "$found" ]; then
            export LD_LIBRARY_PATH="$(dirname "$found")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
            echo "found $found"
        fi
    done
    export CANDLE_FUSED_PTX_DIR="$DIR/fused-ptx"
    status=0
    for t in driver driver_cublas driver_fused driver_sticky; do
        [ -x "$DIR/bin/$t" ] || continue
        echo "=== $t"
        "$DIR/bin/$t" --test-threads=1 --nocapture || status=1
    done
    exit $status
    ;;
*)
    echo "usage: $0 prepare|run" >&2
    exit 2
    ;;
esac
