// Accurate float sums over the last axis of a contiguous `[rows, cols]`
// matrix, for the backend's `reduce(Sum)`.
//
// The row kernels of `reduce.cu` give each thread a running total in the
// element's compute type (f32 for f32 and the halves). A long row makes
// that total large next to each addend, which then loses its low digits:
// a thread that adds 0.1f 4,000 times is off by about 0.01%, and a sum of
// a million values by more than the CPU backend's pairwise sum. Here each
// thread keeps its total in f64 with Neumaier's compensation (a second
// number collecting what each addition rounded away), and the block
// combines the threads' totals in f64; the result is rounded once.
// (Rows of infinities and NaNs sum as they would plainly.)
//
//   t = s + x;  c += |s| ≥ |x| ? (s − t) + x : (x − t) + s;  s = t
//
// Kernel `reduce_sum_accurate_<dtype>(long long rows, long long cols,
//     const T* x, T* out)`, float dtypes: one block per row (grid-stride
// over rows), `blockDim.x` a multiple of 32.
#include "candle.cuh"

// ANCHOR: neumaier
template <typename T>
__device__ void sum_rows_accurate(long long rows, long long cols, const typename Elem<T>::Storage* x,
                                  typename Elem<T>::Storage* out) {
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const typename Elem<T>::Storage* row = x + r * cols;
        double s = 0.0, c = 0.0;
        for (long long k = threadIdx.x; k < cols; k += blockDim.x) {
            double v = (double)Elem<T>::load(row[k]);
            double t = s + v;
            c += fabs(s) >= fabs(v) ? (s - t) + v : (v - t) + s;
            s = t;
        }
        // An infinity or NaN in the row leaves the compensation NaN
        // (∞ − ∞): then the total is the plain sum (`s − s` is 0 exactly
        // when `s` is finite).
        double total = block_reduce<SumR<double> >(s - s == 0.0 ? s + c : s);
        if (threadIdx.x == 0) out[r] = Elem<T>::from_f64(total);
    }
}
// ANCHOR_END: neumaier

#define REDUCE_SUM_ACCURATE(suffix, T)                                                            \
    extern "C" __global__ void reduce_sum_accurate_##suffix(                                      \
        long long rows, long long cols, const Elem<T>::Storage* x, Elem<T>::Storage* out) {       \
        sum_rows_accurate<T>(rows, cols, x, out);                                                 \
    }                                                                                             \
    CANDLE_KERNEL(reduce_sum_accurate_##suffix)
CANDLE_FOR_FLOAT_DTYPES(REDUCE_SUM_ACCURATE)
