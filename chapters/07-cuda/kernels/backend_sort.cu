// Sorting rows: the kernel behind the backend's `argsort` (and so `sort`
// and `topk`).
//
// Each row of a contiguous `[rows, cols]` matrix is sorted by one block
// with a *bitonic sort*: a fixed network of compare-and-swap steps that
// sorts `p2` (a power of two ≥ cols) keys in log₂(p2)·(log₂(p2) + 1)/2
// stages, every pair of a stage independent of the others, so the block's
// threads share each stage and meet at a barrier between stages. The
// network only ever compares, so it sorts anything with an order: we sort
// *positions*, comparing the elements they point at.
//
// The order is the CPU backend's, made strict so the network's result is
// unique: by value (NaN above every number, as in PyTorch; reversed when
// `descending`), then by position. Breaking ties by position is what a
// stable sort does, so the result is the stable argsort. Positions ≥ cols
// pad the row to `p2` and sort after everything.
//
// Kernel `argsort_<dtype>(long long rows, long long cols, long long p2,
//     const T* x, int descending, long long* scratch, long long* out)`:
// `scratch` holds `p2` positions per block (`gridDim.x · p2` in all), `out`
// is `[rows, cols]` of `long long` positions. Any block size; grid-stride
// over rows.
#include "candle.cuh"

// ANCHOR: sort_order
// Does position `i` of `row` come before position `j`?
template <typename T>
__device__ __forceinline__ bool sort_before(const typename Elem<T>::Storage* row, long long cols,
                                            long long i, long long j, int descending) {
    if (i >= cols) return false;  // padding goes last
    if (j >= cols) return true;
    typedef typename Elem<T>::Compute C;
    C a = Elem<T>::load(row[i]), b = Elem<T>::load(row[j]);
    bool an = a != a, bn = b != b;
    int c;  // −1, 0 or 1: a against b, NaN above every number
    if (an || bn)
        c = (int)an - (int)bn;
    else
        c = a < b ? -1 : (a > b ? 1 : 0);
    if (descending) c = -c;
    if (c != 0) return c < 0;
    return i < j;  // ties keep their order: a stable sort
}
// ANCHOR_END: sort_order

// ANCHOR: bitonic
template <typename T>
__device__ void argsort_rows(long long rows, long long cols, long long p2,
                             const typename Elem<T>::Storage* x, int descending, long long* scratch,
                             long long* out) {
    long long* idx = scratch + (long long)blockIdx.x * p2;
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const typename Elem<T>::Storage* row = x + r * cols;
        for (long long t = threadIdx.x; t < p2; t += blockDim.x) idx[t] = t;
        __syncthreads();
        // Stage (size, stride): element t meets t ^ stride; within each run
        // of `size` the pairs sort up where bit `size` of t is 0, down
        // where it is 1, which makes runs of `2·size` bitonic for the
        // next size.
        for (long long size = 2; size <= p2; size <<= 1) {
            for (long long stride = size >> 1; stride > 0; stride >>= 1) {
                for (long long t = threadIdx.x; t < p2; t += blockDim.x) {
                    long long partner = t ^ stride;
                    if (partner > t) {
                        bool up = (t & size) == 0;
                        long long a = idx[t], b = idx[partner];
                        if (sort_before<T>(row, cols, b, a, descending) == up) {
                            idx[t] = b;
                            idx[partner] = a;
                        }
                    }
                }
                __syncthreads();  // this stage's swaps land before the next reads
            }
        }
        for (long long t = threadIdx.x; t < cols; t += blockDim.x) out[r * cols + t] = idx[t];
        __syncthreads();  // the next row overwrites `idx`
    }
}
// ANCHOR_END: bitonic

#define ARGSORT(suffix, T)                                                                        \
    extern "C" __global__ void argsort_##suffix(long long rows, long long cols, long long p2,     \
                                                const Elem<T>::Storage* x, int descending,        \
                                                long long* scratch, long long* out) {             \
        argsort_rows<T>(rows, cols, p2, x, descending, scratch, out);                             \
    }                                                                                             \
    CANDLE_KERNEL(argsort_##suffix)
CANDLE_FOR_ALL_DTYPES(ARGSORT)
