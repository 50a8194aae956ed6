// Broken kernels, one per mistake the emulator must catch. They are
// compiled into the emulator for its tests and never shipped in `kernels/`.
#include "candle.cuh"

// ANCHOR: block_sum
// The sum of each block's `blockDim.x` elements, by a tree in shared
// memory: at each step the first half of the threads add the second half's
// values to their own. Launch with `blockDim.x` a power of two and
// `blockDim.x · 4` bytes of dynamic shared memory.
extern "C" __global__ void block_sum(const float* x, float* out) {
    extern __shared__ __align__(16) unsigned char candle_smem[];
    float* s = reinterpret_cast<float*>(candle_smem);
    unsigned int t = threadIdx.x;
    s[t] = x[blockIdx.x * blockDim.x + t];
    __syncthreads();
    for (unsigned int half = blockDim.x / 2; half > 0; half /= 2) {
        if (t < half) s[t] += s[t + half];
        __syncthreads();  // every add of this step is done before the next reads
    }
    if (t == 0) out[blockIdx.x] = s[0];
}
CANDLE_KERNEL(block_sum)

// The same without the barriers: a thread may read `s[t + half]` before
// its owner has written it.
extern "C" __global__ void broken_block_sum_no_sync(const float* x, float* out) {
    extern __shared__ __align__(16) unsigned char candle_smem[];
    float* s = reinterpret_cast<float*>(candle_smem);
    unsigned int t = threadIdx.x;
    s[t] = x[blockIdx.x * blockDim.x + t];
    for (unsigned int half = blockDim.x / 2; half > 0; half /= 2) {
        if (t < half) s[t] += s[t + half];
    }
    if (t == 0) out[blockIdx.x] = s[0];
}
CANDLE_KERNEL(broken_block_sum_no_sync)
// ANCHOR_END: block_sum

// ANCHOR: broken
// Writes one element past the end: the bounds check is `<=`.
extern "C" __global__ void broken_write_past_end(long long n, float* y) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) y[i] = 1.0f;
}
CANDLE_KERNEL(broken_write_past_end)

// Reads its right neighbour, one past the end for the last element.
extern "C" __global__ void broken_read_past_end(long long n, const float* x, float* y) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] + x[i + 1];
}
CANDLE_KERNEL(broken_read_past_end)

// Thread 0 leaves early; the others wait at a barrier it never reaches.
extern "C" __global__ void broken_barrier_after_return(float* y) {
    if (threadIdx.x == 0) return;
    __syncthreads();
    y[threadIdx.x] = 1.0f;
}
CANDLE_KERNEL(broken_barrier_after_return)

// Only even lanes take part in a full-mask shuffle.
extern "C" __global__ void broken_divergent_shuffle(float* y) {
    float v = (float)threadIdx.x;
    if (threadIdx.x % 2 == 0) v += __shfl_down_sync(0xffffffffu, v, 1);
    y[threadIdx.x] = v;
}
CANDLE_KERNEL(broken_divergent_shuffle)

// Stops the kernel when it sees a negative number.
extern "C" __global__ void trap_on_negative(long long n, const float* x) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n && x[i] < 0.0f) __trap();
}
CANDLE_KERNEL(trap_on_negative)

// Writes one float past the dynamic shared memory it was given.
extern "C" __global__ void broken_shared_overflow(float* y) {
    extern __shared__ __align__(16) unsigned char candle_smem[];
    float* s = reinterpret_cast<float*>(candle_smem);
    s[threadIdx.x + 1] = 1.0f;  // should be s[threadIdx.x]
    __syncthreads();
    y[threadIdx.x] = s[threadIdx.x];
}
CANDLE_KERNEL(broken_shared_overflow)
// ANCHOR_END: broken

// ANCHOR: warp_demo
// Lane `l` of each warp gets: the sum of its warp (xor butterfly), the
// value of lane l − 1 (up), the ballot of odd values, any/all of x > 0.
extern "C" __global__ void warp_demo(const int* x, int* sum, int* up, unsigned int* ballot,
                                     int* any, int* all) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    int v = x[i];
    int s = v;
    for (int o = 16; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
    sum[i] = s;
    up[i] = __shfl_up_sync(0xffffffffu, v, 1);
    ballot[i] = __ballot_sync(0xffffffffu, v & 1);
    any[i] = __any_sync(0xffffffffu, v > 0);
    all[i] = __all_sync(0xffffffffu, v > 0);
}
CANDLE_KERNEL(warp_demo)
// ANCHOR_END: warp_demo
