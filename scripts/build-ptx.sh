#!/usr/bin/env bash
# Compiles chapter 07's kernels ahead of time, for GPU machines that have
# the NVIDIA driver but no CUDA compiler.
#
# Every `chapters/07-cuda/kernels/*.cu` is compiled by NVRTC to PTX for each
# virtual architecture in ARCHS (compute_80: A100; compute_90: H100/H200),
# written to `chapters/07-cuda/ptx/<name>.sm_<arch>.ptx` (a higher arch only
# when its PTX differs from a lower one's), and listed in the
# generated `chapters/07-cuda/ptx/kernels.rs`, which the crate embeds with
# `include_str!`. The list records a stamp of the sources (see
# `chapter_07::ptx::stamp_of`), so a test notices PTX older than its kernels.
#
# Use NVRTC 13.0 (scripts/install-nvrtc.sh pins it): its PTX carries
# `.version 9.0`, which the GPU machines' driver 580 (CUDA 13.0) loads; a
# newer NVRTC writes a newer `.version` that driver refuses. Any compiler
# warning fails the build.
#
# Usage: scripts/build-ptx.sh [KERNEL_DIR [OUT_DIR]]
#   ARCHS="80 90" (default), PYTHON (default: the NVRTC venv's python).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SRC="${1:-$ROOT/chapters/07-cuda/kernels}"
OUT="${2:-$ROOT/chapters/07-cuda/ptx}"
ARCHS="${ARCHS:-80 90}"
VENV="${NVRTC_VENV:-$ROOT/target/nvrtc-venv}"
PYTHON="${PYTHON:-$VENV/bin/python}"
if [ ! -x "$PYTHON" ]; then
    echo "build-ptx: no NVRTC venv at $VENV; run scripts/install-nvrtc.sh first" >&2
    exit 1
fi
LIB="${CANDLE_NVRTC:-$(find "$VENV" -name 'libnvrtc.so.[0-9]*' | sort | head -n 1)}"
if [ -z "$LIB" ]; then
    echo "build-ptx: libnvrtc.so not found under $VENV" >&2
    exit 1
fi
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$(dirname "$LIB")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$PYTHON" - "$SRC" "$OUT" "$LIB" $ARCHS <<'PY'
import ctypes, hashlib, os, sys

src_dir, out_dir, lib_path, archs = sys.argv[1], sys.argv[2], sys.argv[3], [int(a) for a in sys.argv[4:]]
nvrtc = ctypes.CDLL(lib_path)
nvrtc.nvrtcGetErrorString.restype = ctypes.c_char_p

def check(r, what):
    if r != 0:
        raise SystemExit(f"build-ptx: {what}: {nvrtc.nvrtcGetErrorString(r).decode()}")

major, minor = ctypes.c_int(), ctypes.c_int()
check(nvrtc.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
version = f"{major.value}.{minor.value}"

def is_source(n):
    return n.endswith((".cu", ".cuh", ".h"))

names = sorted((n for n in (os.listdir(src_dir) if os.path.isdir(src_dir) else [])
                if is_source(n) and os.path.isfile(os.path.join(src_dir, n))),
               key=lambda n: n.encode())
# The stamp: sha256 over "sha256(file)  name\n" lines, names in byte order
# (what `sha256sum * | sha256sum` prints in the C locale).
stamp = hashlib.sha256()
files = {}
for n in names:
    data = open(os.path.join(src_dir, n), "rb").read()
    files[n] = data
    stamp.update(f"{hashlib.sha256(data).hexdigest()}  {n}\n".encode())
stamp = stamp.hexdigest()

# Headers are given to NVRTC by name, so `#include "common.cuh"` works.
headers = [n for n in names if not n.endswith(".cu")]
h_src = (ctypes.c_char_p * len(headers))(*[files[h] for h in headers])
h_names = (ctypes.c_char_p * len(headers))(*[h.encode() for h in headers])

def compile_one(name, arch):
    prog = ctypes.c_void_p()
    check(nvrtc.nvrtcCreateProgram(ctypes.byref(prog), files[name], name.encode(),
                                   len(headers), h_src, h_names), "nvrtcCreateProgram")
    opts = [f"--gpu-architecture=compute_{arch}".encode(), b"--std=c++17"]
    copts = (ctypes.c_char_p * len(opts))(*opts)
    r = nvrtc.nvrtcCompileProgram(prog, len(opts), copts)
    size = ctypes.c_size_t()
    nvrtc.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    nvrtc.nvrtcGetProgramLog(prog, log)
    log = log.value.decode(errors="replace").strip()
    if r != 0 or log:
        kind = "error" if r != 0 else "warning"
        raise SystemExit(f"build-ptx: {name} for compute_{arch}: {kind}\n{log}")
    check(nvrtc.nvrtcGetPTXSize(prog, ctypes.byref(size)), "nvrtcGetPTXSize")
    ptx = ctypes.create_string_buffer(size.value)
    check(nvrtc.nvrtcGetPTX(prog, ptx), "nvrtcGetPTX")
    nvrtc.nvrtcDestroyProgram(ctypes.byref(prog))
    return ptx.value.decode()

# Old outputs go: a removed kernel must not stay embedded.
for n in os.listdir(out_dir):
    if n.endswith(".ptx"):
        os.remove(os.path.join(out_dir, n))
entries = []
for n in names:
    if not n.endswith(".cu"):
        continue
    stem = n[:-3]
    previous = None
    for arch in archs:
        ptx = compile_one(n, arch)
        # PTX for compute_80 runs on sm_90 too (the driver's JIT compiles
        # it there), so a higher arch's PTX is kept only when it differs in
        # more than its `.target` line (a kernel with `#if __CUDA_ARCH__`).
        body = "\n".join(l for l in ptx.splitlines() if not l.startswith(".target"))
        if body == previous:
            print(f"build-ptx: {n} for compute_{arch} is the same PTX as for a lower arch: not kept")
            continue
        previous = body
        fname = f"{stem}.sm_{arch}.ptx"
        with open(os.path.join(out_dir, fname), "w") as f:
            f.write(ptx)
        ver = next((l.split()[1] for l in ptx.splitlines() if l.startswith(".version")), "?")
        print(f"build-ptx: {n} -> {fname} (PTX ISA {ver}, {len(ptx)} bytes)")
        entries.append(f'    EmbeddedPtx {{ name: "{stem}", arch: {arch}, ptx: include_str!("{fname}") }},')

with open(os.path.join(out_dir, "kernels.rs"), "w") as f:
    f.write(f"""// @generated by scripts/build-ptx.sh from chapters/07-cuda/kernels: do not edit.
/// SHA-256 stamp of the kernel sources this PTX was built from.
pub const SOURCES_STAMP: &str = "{stamp}";
/// The NVRTC that compiled them.
pub const NVRTC_VERSION: &str = "{version}";
/// The virtual architectures compiled for.
pub const ARCHS: &[u32] = &[{", ".join(str(a) for a in archs)}];
/// Every embedded PTX file.
pub static MODULES: &[EmbeddedPtx] = &[
{chr(10).join(entries)}
];
""")
print(f"build-ptx: {len(entries)} PTX files, NVRTC {version}, stamp {stamp[:16]}")
PY
