// Softmax and log-softmax over the last axis of a contiguous
// `[rows, cols]` matrix, for the backend's registry kernels.
//
// `softmax.cu` finds a row's max and normaliser in one pass (the online
// softmax). Its update `d ← d + exp(x − m)` turns into NaN when both `x`
// and the running max `m` are −∞: exactly what a masked row (a causal
// mask's −∞ logits) starts with, so masked positions came out NaN instead
// of 0. These kernels take the textbook two reductions instead, which
// have no such case:
//
//   m = maxⱼ xⱼ        (NaN wins, as on the CPU)
//   d = Σⱼ exp(xⱼ − m)  (a −∞ entry adds exp(−∞) = 0)
//   softmax:      yᵢ = exp(xᵢ − m) / d
//   log-softmax:  yᵢ = (xᵢ − m) − log d
//
// A row of only −∞ has m = −∞ and gives NaN, a row holding +∞ or NaN
// gives NaN, as on the CPU and in PyTorch.
//
// Kernels `backend_softmax_<dtype>` and `backend_log_softmax_<dtype>`
// `(long long rows, long long cols, const T* x, T* y)`, float dtypes: one
// block per row (grid-stride over rows), `blockDim.x` a multiple of 32.
// Arithmetic in f32 for f32 and the halves, f64 for f64.
#include "candle.cuh"

__device__ __forceinline__ float bk_exp(float x) { return expf(x); }
__device__ __forceinline__ double bk_exp(double x) { return exp(x); }
__device__ __forceinline__ float bk_log(float x) { return logf(x); }
__device__ __forceinline__ double bk_log(double x) { return log(x); }
__device__ __forceinline__ float bk_neg_inf(float) { return -__int_as_float(0x7f800000); }
__device__ __forceinline__ double bk_neg_inf(double) {
    return -__longlong_as_double(0x7ff0000000000000LL);
}

// A NaN anywhere wins; otherwise the larger.
template <typename C>
struct BkMaxR {
    typedef C A;
    __device__ static A identity() { return bk_neg_inf(C(0)); }
    __device__ static A combine(A a, A b) { return (a != a || a > b) ? a : b; }
};

// ANCHOR: softmax_two_pass
template <typename T, bool LOG>
__device__ void bk_softmax_rows(long long rows, long long cols, const typename Elem<T>::Storage* x,
                                typename Elem<T>::Storage* y) {
    typedef typename Elem<T>::Compute C;
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const typename Elem<T>::Storage* xr = x + r * cols;
        typename Elem<T>::Storage* yr = y + r * cols;
        C m = BkMaxR<C>::identity();
        for (long long c = threadIdx.x; c < cols; c += blockDim.x)
            m = BkMaxR<C>::combine(m, Elem<T>::load(xr[c]));
        m = block_reduce<BkMaxR<C> >(m);
        C d = C(0);
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) d += bk_exp(Elem<T>::load(xr[c]) - m);
        d = block_reduce<SumR<C> >(d);
        if (LOG) {
            C logd = bk_log(d);
            for (long long c = threadIdx.x; c < cols; c += blockDim.x)
                yr[c] = Elem<T>::store((Elem<T>::load(xr[c]) - m) - logd);
        } else {
            for (long long c = threadIdx.x; c < cols; c += blockDim.x)
                yr[c] = Elem<T>::store(bk_exp(Elem<T>::load(xr[c]) - m) / d);
        }
    }
}
// ANCHOR_END: softmax_two_pass

#define BACKEND_SOFTMAX(suffix, T)                                                                \
    extern "C" __global__ void backend_softmax_##suffix(                                          \
        long long rows, long long cols, const Elem<T>::Storage* x, Elem<T>::Storage* y) {         \
        bk_softmax_rows<T, false>(rows, cols, x, y);                                              \
    }                                                                                             \
    CANDLE_KERNEL(backend_softmax_##suffix)                                                       \
    extern "C" __global__ void backend_log_softmax_##suffix(                                      \
        long long rows, long long cols, const Elem<T>::Storage* x, Elem<T>::Storage* y) {         \
        bk_softmax_rows<T, true>(rows, cols, x, y);                                               \
    }                                                                                             \
    CANDLE_KERNEL(backend_log_softmax_##suffix)
CANDLE_FOR_FLOAT_DTYPES(BACKEND_SOFTMAX)
