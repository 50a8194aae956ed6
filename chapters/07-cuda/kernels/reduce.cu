// Reductions over the last axis of a contiguous `[rows, cols]` matrix:
// `out[r] = reduce(x[r][0], …, x[r][cols−1])`. The backend permutes (and
// copies) a tensor so the reduced axes come last and merges them into
// one, so this one shape serves every reduction.
//
// One block per row (a grid-stride loop over rows if the grid is
// smaller). Each thread first folds the columns `t, t + B, t + 2B, …`
// (coalesced: consecutive threads read consecutive addresses), then the
// block combines its `B` partial results. That second step is written
// twice, as the book tells it:
//
// - `reduce_<op>_shared_<dtype>`: a tree in shared memory, halving the
//   active threads at each step, a `__syncthreads()` between steps.
//   Launch with `blockDim.x` a power of two and `blockDim.x · 16` bytes
//   of dynamic shared memory.
// - `reduce_<op>_<dtype>`: warp shuffles inside each warp, shared memory
//   only between warps (`block_reduce` in candle.cuh): fewer barriers,
//   fewer shared-memory trips. `blockDim.x` a multiple of 32.
//
// Both take `(long long rows, long long cols, const T* x, T* out)`;
// `argmax`/`argmin` write `long long` indices. Sums accumulate in f32
// (f64 for f64, wrapping i64 for i64) and round once. Max and min
// propagate NaN, argmax/argmin point at the first NaN, and ties go to the
// first index, as on the CPU. `max`/`min`/`arg*` of an empty row is an
// error the op layer reports before launching.
#include "candle.cuh"

// ANCHOR: reducers
template <typename C>
__device__ __forceinline__ bool is_nan_(C v) {
    return v != v;
}
template <typename C>
__device__ __forceinline__ C lowest_();
template <>
__device__ __forceinline__ float lowest_<float>() {
    return -__int_as_float(0x7f800000);
}
template <>
__device__ __forceinline__ double lowest_<double>() {
    return -__longlong_as_double(0x7ff0000000000000LL);
}
template <>
__device__ __forceinline__ long long lowest_<long long>() {
    return (long long)(-9223372036854775807LL - 1);
}
template <>
__device__ __forceinline__ unsigned char lowest_<unsigned char>() {
    return 0;
}
template <typename C>
__device__ __forceinline__ C highest_();
template <>
__device__ __forceinline__ float highest_<float>() {
    return __int_as_float(0x7f800000);
}
template <>
__device__ __forceinline__ double highest_<double>() {
    return __longlong_as_double(0x7ff0000000000000LL);
}
template <>
__device__ __forceinline__ long long highest_<long long>() {
    return 9223372036854775807LL;
}
template <>
__device__ __forceinline__ unsigned char highest_<unsigned char>() {
    return 255;
}

// A NaN anywhere wins; otherwise the larger (smaller).
template <typename C>
struct MaxR {
    typedef C A;
    __device__ static A identity() { return lowest_<C>(); }
    __device__ static A combine(A a, A b) { return is_nan_(a) ? a : (is_nan_(b) || b > a ? b : a); }
};
template <typename C>
struct MinR {
    typedef C A;
    __device__ static A identity() { return highest_<C>(); }
    __device__ static A combine(A a, A b) { return is_nan_(a) ? a : (is_nan_(b) || b < a ? b : a); }
};
struct SumI64R {
    typedef long long A;
    __device__ static A identity() { return 0; }
    __device__ static A combine(A a, A b) {
        return (long long)((unsigned long long)a + (unsigned long long)b);
    }
};

// Argmax/argmin carry (value, index). `better(a, b)`: does `a` win? NaN
// beats numbers, then the larger (smaller) value, then the smaller index:
// an order that does not depend on which pair meets which first.
template <typename C, bool MAX>
struct ArgR {
    struct A {
        C v;
        long long i;
    };
    __device__ static A identity() {
        A a;
        a.v = MAX ? lowest_<C>() : highest_<C>();
        a.i = 9223372036854775807LL;
        return a;
    }
    __device__ static bool better(const A& a, const A& b) {
        bool an = is_nan_(a.v), bn = is_nan_(b.v);
        if (an || bn) return an && (!bn || a.i < b.i);
        if (a.v != b.v) return MAX ? a.v > b.v : a.v < b.v;
        return a.i < b.i;
    }
    __device__ static A combine(A a, A b) { return better(b, a) ? b : a; }
};
template <typename C>
using ArgMaxR = ArgR<C, true>;
template <typename C>
using ArgMinR = ArgR<C, false>;
// ANCHOR_END: reducers

// How each op folds one element into a thread's accumulator.
template <typename T, typename R>
struct Fold {
    __device__ static typename R::A first(long long) { return R::identity(); }
    __device__ static typename R::A step(typename R::A acc, typename Elem<T>::Compute v, long long) {
        return R::combine(acc, (typename R::A)v);
    }
};
template <typename T, typename C, bool MAX>
struct Fold<T, ArgR<C, MAX> > {
    typedef ArgR<C, MAX> R;
    __device__ static typename R::A first(long long) { return R::identity(); }
    __device__ static typename R::A step(typename R::A acc, C v, long long i) {
        typename R::A b;
        b.v = v;
        b.i = i;
        return R::combine(acc, b);
    }
};

// ANCHOR: reduce_shared
// Step 2 as a tree in shared memory: `s` holds one accumulator per thread;
// at each step the lower half adds the upper half.
template <typename R>
__device__ typename R::A block_reduce_shared(typename R::A v) {
    extern __shared__ __align__(16) unsigned char candle_smem[];
    typename R::A* s = reinterpret_cast<typename R::A*>(candle_smem);
    unsigned int t = threadIdx.x;
    s[t] = v;
    __syncthreads();
    for (unsigned int half = blockDim.x / 2; half > 0; half /= 2) {
        if (t < half) s[t] = R::combine(s[t], s[t + half]);
        __syncthreads();  // this step's writes land before the next step reads
    }
    v = s[0];
    __syncthreads();  // everyone has read s[0] before the next row overwrites it
    return v;
}
// ANCHOR_END: reduce_shared

// Step 2 with warp shuffles, for (value, index) pairs: two shuffles per
// step, one per field.
template <typename R>
__device__ typename R::A block_reduce_pairs(typename R::A v) {
    for (int o = 16; o > 0; o /= 2) {
        typename R::A other;
        other.v = __shfl_down_sync(0xffffffffu, v.v, o);
        other.i = __shfl_down_sync(0xffffffffu, v.i, o);
        v = R::combine(v, other);
    }
    __shared__ typename R::A partial[32];
    __shared__ typename R::A total;
    unsigned int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < blockDim.x / 32 ? partial[lane] : R::identity();
        for (int o = 16; o > 0; o /= 2) {
            typename R::A other;
            other.v = __shfl_down_sync(0xffffffffu, v.v, o);
            other.i = __shfl_down_sync(0xffffffffu, v.i, o);
            v = R::combine(v, other);
        }
        if (lane == 0) total = v;
    }
    __syncthreads();
    v = total;
    __syncthreads();
    return v;
}

template <typename R>
struct IsPair {
    static const bool value = false;
};
template <typename C, bool MAX>
struct IsPair<ArgR<C, MAX> > {
    static const bool value = true;
};

// The value a reducer's result is stored as: the element, or the index.
template <typename T, typename R>
struct Out {
    typedef typename Elem<T>::Storage type;
    __device__ static type from(typename R::A a) { return Elem<T>::store((typename Elem<T>::Compute)a); }
};
template <typename T, typename C, bool MAX>
struct Out<T, ArgR<C, MAX> > {
    typedef long long type;
    __device__ static long long from(typename ArgR<C, MAX>::A a) { return a.i; }
};

// Dispatches step 2 to the pair version for argmax/argmin.
template <typename R, bool PAIR>
struct WarpStep {
    __device__ static typename R::A run(typename R::A v) { return block_reduce<R>(v); }
};
template <typename R>
struct WarpStep<R, true> {
    __device__ static typename R::A run(typename R::A v) { return block_reduce_pairs<R>(v); }
};

// ANCHOR: reduce_rows
template <typename T, typename R, bool SHARED>
__device__ void reduce_rows(long long rows, long long cols, const typename Elem<T>::Storage* x,
                            typename Out<T, R>::type* out) {
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const typename Elem<T>::Storage* row = x + r * cols;
        // Step 1: each thread folds its columns t, t + B, t + 2B, ...
        typename R::A acc = Fold<T, R>::first(0);
        for (long long c = threadIdx.x; c < cols; c += blockDim.x)
            acc = Fold<T, R>::step(acc, Elem<T>::load(row[c]), c);
        // Step 2: the block combines the partial results.
        acc = SHARED ? block_reduce_shared<R>(acc) : WarpStep<R, IsPair<R>::value>::run(acc);
        if (threadIdx.x == 0) out[r] = Out<T, R>::from(acc);
    }
}
// ANCHOR_END: reduce_rows

#define REDUCE(op, Rt, suffix, T)                                                                  \
    extern "C" __global__ void reduce_##op##_##suffix(long long rows, long long cols,             \
                                                      const Elem<T>::Storage* x,                   \
                                                      Out<T, Rt>::type* out) {                     \
        reduce_rows<T, Rt, false>(rows, cols, x, out);                                             \
    }                                                                                              \
    CANDLE_KERNEL(reduce_##op##_##suffix)                                                          \
    extern "C" __global__ void reduce_##op##_shared_##suffix(long long rows, long long cols,      \
                                                             const Elem<T>::Storage* x,            \
                                                             Out<T, Rt>::type* out) {              \
        reduce_rows<T, Rt, true>(rows, cols, x, out);                                              \
    }                                                                                              \
    CANDLE_KERNEL(reduce_##op##_shared_##suffix)

#define REDUCE_FLOAT(suffix, T)                                                                    \
    REDUCE(sum, SumR<Elem<T>::Compute>, suffix, T)                                                 \
    REDUCE(max, MaxR<Elem<T>::Compute>, suffix, T)                                                 \
    REDUCE(min, MinR<Elem<T>::Compute>, suffix, T)                                                 \
    REDUCE(argmax, ArgMaxR<Elem<T>::Compute>, suffix, T)                                           \
    REDUCE(argmin, ArgMinR<Elem<T>::Compute>, suffix, T)
CANDLE_FOR_FLOAT_DTYPES(REDUCE_FLOAT)
REDUCE(sum, SumI64R, i64, long long)
REDUCE(max, MaxR<long long>, i64, long long)
REDUCE(min, MinR<long long>, i64, long long)
REDUCE(argmax, ArgMaxR<long long>, i64, long long)
REDUCE(argmin, ArgMinR<long long>, i64, long long)
REDUCE(max, MaxR<unsigned char>, u8, unsigned char)
REDUCE(min, MinR<unsigned char>, u8, unsigned char)
REDUCE(argmax, ArgMaxR<unsigned char>, u8, unsigned char)
REDUCE(argmin, ArgMinR<unsigned char>, u8, unsigned char)
