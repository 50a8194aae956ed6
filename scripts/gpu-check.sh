#!/usr/bin/env bash
# Every GPU check of chapter 07, in two steps, for a lent GPU machine that
# has the NVIDIA driver but no Rust toolchain and no package registry:
#
#   scripts/gpu-check.sh prepare   # here: builds, strips and packs (needs cargo)
#   scripts/gpu-check.sh run       # on the GPU machine, from the repository root
#
# `prepare` writes target/gpu-check/pack.tar.xz (carry `target/gpu-check`):
# chapter 07's GPU test programs, the chapter 02-06 suites as chapter 07
# builds them, the GEMM ladder example and the `candle` command, all
# stripped, plus the PTX of the generated fused kernels. `run` then:
#   1. runs the driver, backend and Adam tests with CANDLE_DEVICE=cuda;
#   2. runs the chapter 02-06 suites with CANDLE_DEVICE=cuda (the failures
#      that the CPU-only assertions give on any device are listed in the
#      chapter 07 page);
#   3. measures the GEMM ladder and writes its table and figure to $OUT
#      (or target/gpu-check/out);
#   4. trains the MNIST MLP with `candle train mnist --device cuda`, and
#      the same on the CPU, for the accuracy and the epoch times;
#   5. runs the sticky-error test last (it breaks its own CUDA context).
# Its exit status is non-zero if any step failed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="$ROOT/target/gpu-check"
case "${1:-}" in
prepare)
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
    cd "$ROOT"
    rm -rf "$DIR" && mkdir -p "$DIR/bin" "$DIR/fused-ptx"
    tests='--test driver --test driver_cublas --test driver_fused --test driver_sticky --test backend --test backend_adam'
    suites='--test suite_02 --test suite_03 --test suite_04 --test suite_05 --test suite_06'
    # shellcheck disable=SC2086
    cargo test -p chapter-07 $tests $suites --no-run --message-format=json 2>/dev/null |
        python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])
' | while read -r name exe; do
        cp "$exe" "$DIR/bin/$name" && strip "$DIR/bin/$name"
    done
    cargo build --release -q -p chapter-07 --example gemm_ladder
    cargo build --release -q -p candle-lib
    for exe in "$CARGO_TARGET_DIR/release/examples/gemm_ladder" "$CARGO_TARGET_DIR/release/candle"; do
        cp "$exe" "$DIR/bin/" && strip "$DIR/bin/$(basename "$exe")"
    done
    CANDLE_FUSED_PTX_DIR="$DIR/fused-ptx" cargo test -q -p chapter-07 --test codegen \
        codegen_kernels_compile_with_nvrtc >/dev/null
    (cd "$DIR" && tar cJf pack.tar.xz bin fused-ptx && rm -rf bin fused-ptx)
    du -sh "$DIR/pack.tar.xz"
    ;;
run)
    cd "$ROOT"
    [ -d "$DIR/bin" ] || tar xJf "$DIR/pack.tar.xz" -C "$DIR"
    out="${OUT:-$DIR/out}"
    mkdir -p "$out"
    nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv || true
    for lib in libnvrtc.so.13 libcublas.so.13; do
        found="$(find /opt /usr /root "$ROOT/target" -name "$lib" 2>/dev/null | head -n 1 || true)"
        if [ -n "$found" ]; then
            export LD_LIBRARY_PATH="$(dirname "$found")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
            echo "found $found"
        else
            echo "no $lib on this machine"
        fi
    done
    export CANDLE_FUSED_PTX_DIR="$DIR/fused-ptx" CANDLE_DEVICE=cuda
    status=0
    step() { echo; echo "=== $*"; "$@" || { echo "=== FAILED: $*"; status=1; }; }
    for t in driver driver_cublas driver_fused backend backend_adam; do
        step "$DIR/bin/$t" --test-threads=1
    done
    # The suites' by-design failures (CPU-only assertions) would always
    # fail this step: their reports go to $out/suite_NN.txt, and the last
    # lines are shown, without changing the exit status.
    for s in 02 03 04 05 06; do
        echo; echo "=== suite_$s (report in $out/suite_$s.txt)"
        "$DIR/bin/suite_$s" >"$out/suite_$s.txt" 2>&1 || true
        grep -E "^test result|FAILED|^    " "$out/suite_$s.txt" | tail -n 30 || true
    done
    step "$DIR/bin/gemm_ladder" --out "$out"
    unset CANDLE_DEVICE
    step "$DIR/bin/candle" train mnist --device cuda --out "$out/mnist-cuda"
    step "$DIR/bin/candle" train mnist --device cpu --out "$out/mnist-cpu"
    step "$DIR/bin/driver_sticky" --test-threads=1
    exit $status
    ;;
*)
    echo "usage: $0 prepare|run" >&2
    exit 2
    ;;
esac
