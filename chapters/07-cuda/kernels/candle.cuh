// candle.cuh: what every kernel file of chapter 07 shares.
//
// The kernel files are CUDA C++ for NVRTC, which has no host headers: no
// <cstdint>, no <cmath>. So the integer types are spelled `long long` and
// `unsigned int`, math is CUDA's builtin `expf`, `logf`, `erff`..., and the
// half-precision types are plain `unsigned short` bit patterns with
// conversions written here (bit-exact, so `cuda_fp16.h` is not needed).
//
// The same files compile as C++17 for the emulator (`emu/cuda_emu.h`),
// selected by `CANDLE_EMULATOR`.
#pragma once

#if defined(CANDLE_EMULATOR)
#include "cuda_emu.h"
#else
// On the GPU the export macro does nothing: the kernel is found in the
// compiled module by its (unmangled, `extern "C"`) name.
#define CANDLE_KERNEL(name)
#endif

// ANCHOR: dynamic_shared
// Dynamic shared memory (the launch's `shared_mem_bytes`) is declared in
// every kernel under one name and one byte type, then cast:
//
//   extern __shared__ __align__(16) unsigned char candle_smem[];
//   float* s = reinterpret_cast<float*>(candle_smem);
//
// One name, because all `extern __shared__` arrays of a kernel are the
// same memory, and a template instantiated for f32 and f64 cannot declare
// it as `float[]` in one and `double[]` in the other. The emulator
// defines `candle_smem` (48 KiB, refilled with NaN bytes at the start of
// every block, with a guard after the launch's size).
// ANCHOR_END: dynamic_shared

// ANCHOR: strided
// A strided view, passed to a kernel by value: element `(i₀, …, i_{r−1})`
// lives at `offset + Σ iₖ·strides[k]`. The backend merges dimensions that
// are contiguous with each other and drops size-1 ones before launching,
// so most views arrive with rank 1 or 2; a view that still has more than
// `CANDLE_MAX_RANK` dimensions is reported as an error by the backend.
#define CANDLE_MAX_RANK 8
struct Strided {
    int rank;
    long long offset;
    long long shape[CANDLE_MAX_RANK];
    long long strides[CANDLE_MAX_RANK];
};

// Where the `i`-th element (in row-major order) of a view lives: peel off
// the coordinates from the last dimension to the first. (Not inlined: a
// 64-bit division is a long instruction sequence, and one copy per module
// keeps the compiled kernels small. A template, so that every file may
// include it and the emulator, which links all files together, keeps one.)
template <int = 0>
__device__ __noinline__ long long strided_offset_general(const Strided& v, long long i) {
    long long off = v.offset;
    for (int d = v.rank - 1; d >= 0; --d) {
        long long n = v.shape[d];
        off += (i % n) * v.strides[d];
        i /= n;
    }
    return off;
}
__device__ __forceinline__ long long strided_offset(const Strided& v, long long i) {
    // The fast path: a contiguous view arrives as rank 1 with stride 1.
    if (v.rank == 1 && v.strides[0] == 1) return v.offset + i;
    return strided_offset_general<>(v, i);
}
// ANCHOR_END: strided

// ANCHOR: grid_stride
// A grid-stride loop: thread `t` of `T` handles elements `t, t + T, t + 2T…`,
// so any grid size covers any `n` (and a small grid can be reused).
#define CANDLE_GRID_STRIDE(i, n)                                                  \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (long long)blockDim.x * gridDim.x)
// ANCHOR_END: grid_stride

// ANCHOR: half
// f16: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits.
// bf16: 1 sign bit, 8 exponent bits (bias 127), 7 mantissa bits: the top
// half of an f32. Widening is exact; narrowing rounds to nearest, ties to
// even, the way the `half` crate (and so the CPU backend) does.
__device__ __forceinline__ float f16_to_float(unsigned short h) {
    unsigned int sign = (unsigned int)(h & 0x8000u) << 16;
    unsigned int exp = (h >> 10) & 0x1fu;
    unsigned int man = h & 0x3ffu;
    if (exp == 0x1fu)  // infinity or NaN (quieted)
        return __uint_as_float(sign | 0x7f800000u | (man ? 0x00400000u | (man << 13) : 0u));
    if (exp == 0) {
        if (man == 0) return __uint_as_float(sign);
        // Subnormal: man · 2⁻²⁴, exact in f32.
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return __uint_as_float(sign | ((exp + 112u) << 23) | (man << 13));
}

__device__ __forceinline__ unsigned short float_to_f16(float f) {
    unsigned int x = __float_as_uint(f);
    unsigned int sign = (x >> 16) & 0x8000u;
    unsigned int exp = x & 0x7f800000u;
    unsigned int man = x & 0x007fffffu;
    if (exp == 0x7f800000u)  // infinity, or NaN kept quiet with its top payload bits
        return (unsigned short)(sign | 0x7c00u | (man ? 0x0200u : 0u) | (man >> 13));
    int e = (int)(exp >> 23) - 127 + 15;
    if (e >= 0x1f) return (unsigned short)(sign | 0x7c00u);  // overflow: ±∞
    if (e <= 0) {
        if (14 - e > 24) return (unsigned short)sign;  // below half the smallest subnormal
        man |= 0x00800000u;                             // the hidden bit
        unsigned int h = man >> (14 - e);
        unsigned int round = 1u << (13 - e);
        // Round up if the dropped part is above half, or exactly half and h is odd.
        if ((man & round) && (man & (3u * round - 1u))) ++h;
        return (unsigned short)(sign | h);
    }
    unsigned int h = sign | ((unsigned int)e << 10) | (man >> 13);
    if ((man & 0x1000u) && (man & 0x2fffu)) ++h;  // a carry into the exponent is right too
    return (unsigned short)h;
}

__device__ __forceinline__ float bf16_to_float(unsigned short h) {
    return __uint_as_float((unsigned int)h << 16);
}

// From an f64, like the `half` crate: the low 32 mantissa bits are
// dropped first (every f32, and so every f32 result, is unaffected).
__device__ __forceinline__ unsigned short double_to_bf16(double d) {
    unsigned long long v = (unsigned long long)__double_as_longlong(d);
    unsigned int x = (unsigned int)(v >> 32);
    unsigned int sign = x & 0x80000000u;
    unsigned int exp = x & 0x7ff00000u;
    unsigned int man = x & 0x000fffffu;
    if (exp == 0x7ff00000u) {
        unsigned int nan = (man == 0 && (unsigned int)v == 0) ? 0u : 0x0040u;
        return (unsigned short)((sign >> 16) | 0x7f80u | nan | (man >> 13));
    }
    unsigned int hsign = sign >> 16;
    long long e = (long long)(exp >> 20) - 1023 + 127;
    if (e >= 0xff) return (unsigned short)(hsign | 0x7f80u);
    if (e <= 0) {
        if (7 - e > 21) return (unsigned short)hsign;
        man |= 0x00100000u;
        unsigned int h = man >> (14 - e);
        unsigned int round = 1u << (13 - e);
        if ((man & round) && (man & (3u * round - 1u))) ++h;
        return (unsigned short)(hsign | h);
    }
    unsigned int h = hsign | ((unsigned int)e << 7) | (man >> 13);
    if ((man & 0x1000u) && (man & 0x2fffu)) ++h;
    return (unsigned short)h;
}
__device__ __forceinline__ unsigned short float_to_bf16(float f) { return double_to_bf16((double)f); }
// An f64 becomes f16 through f32, as the CPU backend's `half` crate does on
// x86 (its F16C path): two roundings, almost always the same as one.
__device__ __forceinline__ unsigned short double_to_f16(double d) { return float_to_f16((float)d); }
// ANCHOR_END: half

// ANCHOR: dtypes
// Tag types for the two half formats (both stored as `unsigned short`), so
// templates can tell them apart.
struct f16_t {
    unsigned short bits;
};
struct bf16_t {
    unsigned short bits;
};

// For each element type: how it is stored, the type arithmetic happens in
// (`f32` for the halves: load, compute in f32, round once when storing),
// and Rust's `as` conversions from f64 and i64 (saturating float → int,
// NaN → 0, wrapping int → u8).
template <typename T>
struct Elem;
template <>
struct Elem<float> {
    typedef float Storage;
    typedef float Compute;
    __device__ static float load(float v) { return v; }
    __device__ static float store(float v) { return v; }
    __device__ static double to_f64(float v) { return (double)v; }
    __device__ static float from_f64(double v) { return (float)v; }
    __device__ static float from_i64(long long v) { return (float)v; }
    static const bool is_int = false;
};
template <>
struct Elem<double> {
    typedef double Storage;
    typedef double Compute;
    __device__ static double load(double v) { return v; }
    __device__ static double store(double v) { return v; }
    __device__ static double to_f64(double v) { return v; }
    __device__ static double from_f64(double v) { return v; }
    __device__ static double from_i64(long long v) { return (double)v; }
    static const bool is_int = false;
};
template <>
struct Elem<f16_t> {
    typedef unsigned short Storage;
    typedef float Compute;
    __device__ static float load(unsigned short v) { return f16_to_float(v); }
    __device__ static unsigned short store(float v) { return float_to_f16(v); }
    __device__ static double to_f64(unsigned short v) { return (double)f16_to_float(v); }
    __device__ static unsigned short from_f64(double v) { return double_to_f16(v); }
    __device__ static unsigned short from_i64(long long v) { return double_to_f16((double)v); }
    static const bool is_int = false;
};
template <>
struct Elem<bf16_t> {
    typedef unsigned short Storage;
    typedef float Compute;
    __device__ static float load(unsigned short v) { return bf16_to_float(v); }
    __device__ static unsigned short store(float v) { return float_to_bf16(v); }
    __device__ static double to_f64(unsigned short v) { return (double)bf16_to_float(v); }
    __device__ static unsigned short from_f64(double v) { return double_to_bf16(v); }
    __device__ static unsigned short from_i64(long long v) { return double_to_bf16((double)v); }
    static const bool is_int = false;
};
template <>
struct Elem<long long> {
    typedef long long Storage;
    typedef long long Compute;
    __device__ static long long load(long long v) { return v; }
    __device__ static long long store(long long v) { return v; }
    __device__ static double to_f64(long long v) { return (double)v; }
    __device__ static long long from_f64(double v) {
        if (isnan(v)) return 0;
        if (v >= 9223372036854775807.0) return 9223372036854775807LL;
        if (v <= -9223372036854775808.0) return (long long)(-9223372036854775807LL - 1);
        return (long long)v;  // truncates toward zero
    }
    __device__ static long long from_i64(long long v) { return v; }
    static const bool is_int = true;
};
template <>
struct Elem<unsigned char> {
    typedef unsigned char Storage;
    typedef unsigned char Compute;
    __device__ static unsigned char load(unsigned char v) { return v; }
    __device__ static unsigned char store(unsigned char v) { return v; }
    __device__ static double to_f64(unsigned char v) { return (double)v; }
    __device__ static unsigned char from_f64(double v) {
        if (isnan(v) || v <= 0.0) return 0;
        if (v >= 255.0) return 255;
        return (unsigned char)v;
    }
    __device__ static unsigned char from_i64(long long v) { return (unsigned char)(v & 0xff); }
    static const bool is_int = true;
};
// ANCHOR_END: dtypes

// All kernel files are linked into one library for the emulator (and are
// separate modules on the GPU): a helper defined in a `.cu` file needs a
// name no other file uses, or must be `inline`/a template with the same
// definition everywhere.

// Instantiates `M(suffix, T)` once per dtype, or per float dtype.
#define CANDLE_FOR_FLOAT_DTYPES(M) M(f32, float) M(f64, double) M(f16, f16_t) M(bf16, bf16_t)
#define CANDLE_FOR_ALL_DTYPES(M) CANDLE_FOR_FLOAT_DTYPES(M) M(i64, long long) M(u8, unsigned char)

// ANCHOR: warp_reduce
// Reductions across a block, for kernels that give one block to one row.
//
// A reducer `R` says how: `R::A` is the accumulator type, `R::identity()`
// the value of an empty part, and `R::combine(a, b)` must be associative
// and commutative (threads meet in no fixed order).
//
// Step 1, in a warp: `__shfl_down_sync` hands each lane the value of the
// lane `o` places above it, without shared memory. After the steps
// o = 16, 8, 4, 2, 1, lane 0 holds the combination of all 32.
template <typename R>
__device__ __forceinline__ typename R::A warp_reduce(typename R::A v) {
    for (int o = 16; o > 0; o /= 2) v = R::combine(v, __shfl_down_sync(0xffffffffu, v, o));
    return v;
}

// Step 2, across the warps: lane 0 of each warp leaves its result in
// shared memory, and the first warp combines those. The result is
// returned to *every* thread (through shared memory again), so a kernel
// can use a row's max or sum right away. `blockDim.x` must be a multiple
// of 32.
template <typename R>
__device__ typename R::A block_reduce(typename R::A v) {
    __shared__ typename R::A partial[32];
    __shared__ typename R::A total;
    unsigned int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    v = warp_reduce<R>(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < blockDim.x / 32 ? partial[lane] : R::identity();
        v = warp_reduce<R>(v);
        if (lane == 0) total = v;
    }
    __syncthreads();
    v = total;
    __syncthreads();  // `partial` and `total` may be reused right after
    return v;
}
// ANCHOR_END: warp_reduce

// Accumulator types: f32 for f32 and the halves, f64 for f64.
template <typename C>
struct SumR {
    typedef C A;
    __device__ static A identity() { return A(0); }
    __device__ static A combine(A a, A b) { return a + b; }
};
