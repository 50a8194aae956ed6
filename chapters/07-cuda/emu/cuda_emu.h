// The CUDA emulator: what a kernel file needs from CUDA, for the CPU.
//
// A `.cu` file of `kernels/` is compiled twice. NVRTC compiles it for the
// GPU; for the emulator, g++ compiles it as plain C++17 with this header
// included first (`candle.cuh` includes it when `CANDLE_EMULATOR` is
// defined). Everything a kernel may use is defined here in terms of the
// CPU:
//
// - each CUDA thread of a block is a *fiber* (a coroutine with its own
//   stack) run by `cuda_emu.cpp`; the fibers of one block take turns on
//   one OS thread, switching only where CUDA threads must wait for each
//   other (`__syncthreads`, warp shuffles and votes) or when they finish;
// - `threadIdx` is the running fiber's index; `blockIdx`, `blockDim` and
//   `gridDim` belong to the block being run;
// - `__shared__` becomes `thread_local`: a `__shared__` variable inside a
//   kernel is a static local, so all fibers of the block (which run on the
//   same OS thread) see the same one, exactly as the threads of a block see
//   one copy of shared memory;
// - atomics are the compiler's `__atomic` builtins, math functions are the
//   C library's.
//
// Only what CUDA itself provides is defined (`atomicAdd` has no `long long`
// overload in CUDA, so it has none here): a kernel that compiles for the
// emulator compiles for the GPU.
#pragma once

#define CANDLE_EMULATOR 1

#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>

// ---------------------------------------------------------------------------
// Vector types and launch coordinates.
struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
};
struct alignas(8) float2 {
    float x, y;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(16) double2 {
    double x, y;
};
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline double2 make_double2(double x, double y) { return double2{x, y}; }

// ---------------------------------------------------------------------------
// ANCHOR: qualifiers
// Qualifiers. `__shared__` is the one that carries meaning, see above.
#define __global__
#define __device__
#define __host__
#define __noinline__ __attribute__((noinline))
#define __forceinline__ inline __attribute__((always_inline))
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ thread_local
// ANCHOR_END: qualifiers

namespace candle_emu {

// Where the running fiber is: its thread index, its lane and warp.
struct ThreadState {
    uint3 thread_idx;
    unsigned int linear;  // x + y·bx + z·bx·by
    unsigned int lane;    // linear % 32
    unsigned int warp;    // linear / 32
};

extern thread_local ThreadState* tls_thread;
extern thread_local uint3 tls_block_idx;
extern thread_local dim3 tls_block_dim;
extern thread_local dim3 tls_grid_dim;

// Implemented in cuda_emu.cpp.
void syncthreads();
enum Collective : int {
    SHFL_IDX = 1,
    SHFL_UP,
    SHFL_DOWN,
    SHFL_XOR,
    BALLOT,
    ANY,
    ALL,
    SYNCWARP,
};
unsigned long long warp_collective(Collective kind, unsigned int mask, unsigned long long value,
                                   int arg, int width);
[[noreturn]] void trap();

// The parameters of a launch, as the Rust side passes them.
struct LaunchArgs {
    unsigned int grid[3];
    unsigned int block[3];
    unsigned int shared_mem_bytes;
    int schedule;  // 0 forward, 1 reverse, 2 shuffled by `seed`
    unsigned long long seed;
    char* error;  // a message is written here on failure
    unsigned long long error_capacity;
};

// Runs `thunk(params)` once per thread of the grid; 0 on success.
int run_grid(const char* name, const LaunchArgs* args, void (*thunk)(void**), void** params);
// Records an error message for the launch in progress (used before it starts).
int fail(const LaunchArgs* args, const char* fmt, ...);

// Calls `f` with its arguments read from `params[i]`, the way
// `cuLaunchKernel` passes them: `params[i]` points at argument `i`.
template <typename... Args, std::size_t... I>
inline void invoke_impl(void (*f)(Args...), void** params, std::index_sequence<I...>) {
    f(*static_cast<std::remove_cv_t<std::remove_reference_t<Args>>*>(params[I])...);
}
template <typename... Args>
inline void invoke(void (*f)(Args...), void** params) {
    invoke_impl(f, params, std::index_sequence_for<Args...>{});
}
template <typename... Args>
constexpr int arity(void (*)(Args...)) {
    return static_cast<int>(sizeof...(Args));
}

template <typename T>
inline unsigned long long to_bits64(T v) {
    static_assert(sizeof(T) <= 8, "a shuffle moves at most 8 bytes");
    unsigned long long b = 0;
    std::memcpy(&b, &v, sizeof(T));
    return b;
}
template <typename T>
inline T from_bits64(unsigned long long b) {
    T v;
    std::memcpy(&v, &b, sizeof(T));
    return v;
}

}  // namespace candle_emu

// ANCHOR: export
// The export macro: under the emulator, `CANDLE_KERNEL(name)` after a
// kernel defines the C entry point `candle_emu_kernel_<name>` that the Rust
// side calls with the launch configuration and the parameter pointers. It
// checks the parameter count, then runs the grid.
#define CANDLE_KERNEL(name)                                                                  \
    static void candle_emu_thunk_##name(void** p) { ::candle_emu::invoke(&name, p); }        \
    extern "C" int candle_emu_kernel_##name(const ::candle_emu::LaunchArgs* a, void** p,     \
                                            int n) {                                         \
        constexpr int want = ::candle_emu::arity(&name);                                     \
        if (n != want)                                                                       \
            return ::candle_emu::fail(a, "kernel %s takes %d parameters, the launch gave %d", \
                                      #name, want, n);                                       \
        return ::candle_emu::run_grid(#name, a, &candle_emu_thunk_##name, p);                \
    }
// ANCHOR_END: export

// ---------------------------------------------------------------------------
// ANCHOR: builtins
// Built-in variables.
#define threadIdx (::candle_emu::tls_thread->thread_idx)
#define blockIdx (::candle_emu::tls_block_idx)
#define blockDim (::candle_emu::tls_block_dim)
#define gridDim (::candle_emu::tls_grid_dim)
#define warpSize 32
// ANCHOR_END: builtins

// ---------------------------------------------------------------------------
// Synchronisation, warp shuffles and votes.
inline void __syncthreads() { ::candle_emu::syncthreads(); }
inline void __syncwarp(unsigned int mask = 0xffffffffu) {
    ::candle_emu::warp_collective(::candle_emu::SYNCWARP, mask, 0, 0, 32);
}
// Every write is visible at once on the emulator: fences have nothing to do.
inline void __threadfence() {}
inline void __threadfence_block() {}
[[noreturn]] inline void __trap() { ::candle_emu::trap(); }

// One overload per type CUDA shuffles (smaller integers promote to `int`,
// as they do on the GPU; a struct does not compile, as on the GPU).
#define CANDLE_EMU_SHUFFLES(T)                                                                  \
    inline T __shfl_sync(unsigned int mask, T v, int src_lane, int width = 32) {                \
        return candle_emu::from_bits64<T>(candle_emu::warp_collective(                         \
            candle_emu::SHFL_IDX, mask, candle_emu::to_bits64(v), src_lane, width));            \
    }                                                                                           \
    inline T __shfl_up_sync(unsigned int mask, T v, unsigned int delta, int width = 32) {       \
        return candle_emu::from_bits64<T>(candle_emu::warp_collective(                         \
            candle_emu::SHFL_UP, mask, candle_emu::to_bits64(v), static_cast<int>(delta), width)); \
    }                                                                                           \
    inline T __shfl_down_sync(unsigned int mask, T v, unsigned int delta, int width = 32) {     \
        return candle_emu::from_bits64<T>(candle_emu::warp_collective(                         \
            candle_emu::SHFL_DOWN, mask, candle_emu::to_bits64(v), static_cast<int>(delta),     \
            width));                                                                            \
    }                                                                                           \
    inline T __shfl_xor_sync(unsigned int mask, T v, int lane_mask, int width = 32) {           \
        return candle_emu::from_bits64<T>(candle_emu::warp_collective(                         \
            candle_emu::SHFL_XOR, mask, candle_emu::to_bits64(v), lane_mask, width));           \
    }
CANDLE_EMU_SHUFFLES(int)
CANDLE_EMU_SHUFFLES(unsigned int)
CANDLE_EMU_SHUFFLES(long)
CANDLE_EMU_SHUFFLES(unsigned long)
CANDLE_EMU_SHUFFLES(long long)
CANDLE_EMU_SHUFFLES(unsigned long long)
CANDLE_EMU_SHUFFLES(float)
CANDLE_EMU_SHUFFLES(double)
#undef CANDLE_EMU_SHUFFLES
inline unsigned int __ballot_sync(unsigned int mask, int pred) {
    return static_cast<unsigned int>(
        candle_emu::warp_collective(candle_emu::BALLOT, mask, pred != 0, 0, 32));
}
inline int __any_sync(unsigned int mask, int pred) {
    return static_cast<int>(candle_emu::warp_collective(candle_emu::ANY, mask, pred != 0, 0, 32));
}
inline int __all_sync(unsigned int mask, int pred) {
    return static_cast<int>(candle_emu::warp_collective(candle_emu::ALL, mask, pred != 0, 0, 32));
}

// ---------------------------------------------------------------------------
// Atomics: the overloads CUDA has, on the compiler's atomic builtins. Each
// returns the old value.
#define CANDLE_EMU_ATOMIC_INT(T)                                                          \
    inline T atomicAdd(T* a, T v) { return __atomic_fetch_add(a, v, __ATOMIC_RELAXED); } \
    inline T atomicSub(T* a, T v) { return __atomic_fetch_sub(a, v, __ATOMIC_RELAXED); } \
    inline T atomicExch(T* a, T v) { return __atomic_exchange_n(a, v, __ATOMIC_RELAXED); } \
    inline T atomicCAS(T* a, T cmp, T v) {                                                \
        __atomic_compare_exchange_n(a, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED); \
        return cmp;                                                                       \
    }                                                                                     \
    inline T atomicMax(T* a, T v) {                                                       \
        T old = __atomic_load_n(a, __ATOMIC_RELAXED);                                     \
        while (old < v &&                                                                 \
               !__atomic_compare_exchange_n(a, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) { \
        }                                                                                 \
        return old;                                                                       \
    }                                                                                     \
    inline T atomicMin(T* a, T v) {                                                       \
        T old = __atomic_load_n(a, __ATOMIC_RELAXED);                                     \
        while (old > v &&                                                                 \
               !__atomic_compare_exchange_n(a, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) { \
        }                                                                                 \
        return old;                                                                       \
    }
CANDLE_EMU_ATOMIC_INT(int)
CANDLE_EMU_ATOMIC_INT(unsigned int)
CANDLE_EMU_ATOMIC_INT(unsigned long long)
#undef CANDLE_EMU_ATOMIC_INT
// CUDA has `atomicMax`/`atomicMin` (not `atomicAdd`) for `long long`.
inline long long atomicMax(long long* a, long long v) {
    long long old = __atomic_load_n(a, __ATOMIC_RELAXED);
    while (old < v &&
           !__atomic_compare_exchange_n(a, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return old;
}
inline long long atomicMin(long long* a, long long v) {
    long long old = __atomic_load_n(a, __ATOMIC_RELAXED);
    while (old > v &&
           !__atomic_compare_exchange_n(a, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return old;
}
// Floating-point adds as a compare-and-swap loop on the bits.
template <typename F, typename I>
inline F candle_emu_atomic_add_float(F* a, F v) {
    I* bits = reinterpret_cast<I*>(a);
    I old = __atomic_load_n(bits, __ATOMIC_RELAXED);
    for (;;) {
        F cur;
        std::memcpy(&cur, &old, sizeof(F));
        F next = cur + v;
        I want;
        std::memcpy(&want, &next, sizeof(F));
        if (__atomic_compare_exchange_n(bits, &old, want, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return cur;
    }
}
inline float atomicAdd(float* a, float v) {
    return candle_emu_atomic_add_float<float, unsigned int>(a, v);
}
inline double atomicAdd(double* a, double v) {
    return candle_emu_atomic_add_float<double, unsigned long long>(a, v);
}
inline unsigned short atomicCAS(unsigned short* a, unsigned short cmp, unsigned short v) {
    __atomic_compare_exchange_n(a, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return cmp;
}

// ---------------------------------------------------------------------------
// Math and bit casts. The C library has `expf`, `logf`, `erff`, `sqrt`...;
// these are CUDA's own names.
using std::isinf;
using std::isnan;
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline int __float_as_int(float x) { return candle_emu::from_bits64<int>(candle_emu::to_bits64(x)); }
inline unsigned int __float_as_uint(float x) {
    return candle_emu::from_bits64<unsigned int>(candle_emu::to_bits64(x));
}
inline float __int_as_float(int x) { return candle_emu::from_bits64<float>(candle_emu::to_bits64(x)); }
inline float __uint_as_float(unsigned int x) {
    return candle_emu::from_bits64<float>(candle_emu::to_bits64(x));
}
inline long long __double_as_longlong(double x) {
    return candle_emu::from_bits64<long long>(candle_emu::to_bits64(x));
}
inline double __longlong_as_double(long long x) {
    return candle_emu::from_bits64<double>(candle_emu::to_bits64(x));
}
inline unsigned int __umulhi(unsigned int a, unsigned int b) {
    return static_cast<unsigned int>((static_cast<unsigned long long>(a) * b) >> 32);
}
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return static_cast<unsigned long long>((static_cast<unsigned __int128>(a) * b) >> 64);
}
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned int>(x)); }
template <typename T>
inline T __ldg(const T* p) {
    return *p;
}

// CUDA's global `min`/`max` overloads.
#define CANDLE_EMU_MINMAX(T)                          \
    inline T min(T a, T b) { return a < b ? a : b; } \
    inline T max(T a, T b) { return a > b ? a : b; }
CANDLE_EMU_MINMAX(int)
CANDLE_EMU_MINMAX(unsigned int)
CANDLE_EMU_MINMAX(long long)
CANDLE_EMU_MINMAX(unsigned long long)
#undef CANDLE_EMU_MINMAX
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }

inline float atomicExch(float* a, float v) {
    unsigned int old = __atomic_exchange_n(reinterpret_cast<unsigned int*>(a), __float_as_uint(v),
                                           __ATOMIC_RELAXED);
    return __uint_as_float(old);
}
