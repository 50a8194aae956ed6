// Matrix products, as a ladder: each rung fixes what limits the one below.
// All compute the row-major `C = A·B` with `A` `[m, k]`, `B` `[k, n]`,
// `C` `[m, n]`, for any m, n, k (ragged edges included), and sum over k in
// the same order, so on the emulator they agree bit for bit.
//
//   gemm_naive_f32      one thread per C element; threadIdx.x walks rows
//   gemm_coalesced_f32  threadIdx.x walks columns: a warp reads 32
//                       consecutive floats of B and writes 32 of C
//   gemm_tiled_f32      16×16 tiles of A and B staged in shared memory:
//                       each global element is read by one thread, then
//                       reused 16 times from shared memory
//   gemm_regblock_f32   64×64 tiles, each thread computes a 4×4 block of C
//                       in registers (16 products per 8 shared loads),
//                       tiles loaded with float4 where aligned
//
// Kernel parameters: `(int m, int n, int k, const float* a,
// const float* b, float* c)`. Launch shapes: naive and coalesced 16×16
// threads and a grid of ⌈·/16⌉ blocks (naive: x over rows, y over columns;
// coalesced: x over columns, y over rows); tiled 16×16 threads, grid
// (⌈n/16⌉, ⌈m/16⌉); regblock 256 threads, grid (⌈n/64⌉, ⌈m/64⌉).
#include "candle.cuh"

// ANCHOR: gemm_naive
extern "C" __global__ void gemm_naive_f32(int m, int n, int k, const float* a, const float* b,
                                          float* c) {
    int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);  // row: neighbours are k floats apart
    int j = (int)(blockIdx.y * blockDim.y + threadIdx.y);
    if (i >= m || j >= n) return;
    float acc = 0.0f;
    for (int p = 0; p < k; ++p) acc += a[(long long)i * k + p] * b[(long long)p * n + j];
    c[(long long)i * n + j] = acc;
}
CANDLE_KERNEL(gemm_naive_f32)
// ANCHOR_END: gemm_naive

// ANCHOR: gemm_coalesced
extern "C" __global__ void gemm_coalesced_f32(int m, int n, int k, const float* a, const float* b,
                                              float* c) {
    int j = (int)(blockIdx.x * blockDim.x + threadIdx.x);  // column: neighbours are adjacent
    int i = (int)(blockIdx.y * blockDim.y + threadIdx.y);
    if (i >= m || j >= n) return;
    float acc = 0.0f;
    for (int p = 0; p < k; ++p) acc += a[(long long)i * k + p] * b[(long long)p * n + j];
    c[(long long)i * n + j] = acc;
}
CANDLE_KERNEL(gemm_coalesced_f32)
// ANCHOR_END: gemm_coalesced

// ANCHOR: gemm_tiled
#define TILE 16
extern "C" __global__ void gemm_tiled_f32(int m, int n, int k, const float* a, const float* b,
                                          float* c) {
    __shared__ float as[TILE][TILE];
    __shared__ float bs[TILE][TILE];
    int tx = (int)threadIdx.x, ty = (int)threadIdx.y;
    int i = (int)blockIdx.y * TILE + ty, j = (int)blockIdx.x * TILE + tx;
    float acc = 0.0f;
    for (int p0 = 0; p0 < k; p0 += TILE) {
        // Each thread loads one element of each tile (0 beyond the edges,
        // so the inner loop needs no bounds checks).
        as[ty][tx] = (i < m && p0 + tx < k) ? a[(long long)i * k + p0 + tx] : 0.0f;
        bs[ty][tx] = (p0 + ty < k && j < n) ? b[(long long)(p0 + ty) * n + j] : 0.0f;
        __syncthreads();  // the tiles are complete before anyone reads them
        int steps = min(TILE, k - p0);
        for (int p = 0; p < steps; ++p) acc += as[ty][p] * bs[p][tx];
        __syncthreads();  // everyone is done with the tiles before they are overwritten
    }
    if (i < m && j < n) c[(long long)i * n + j] = acc;
}
CANDLE_KERNEL(gemm_tiled_f32)
// ANCHOR_END: gemm_tiled

// ANCHOR: gemm_regblock
#define BM 64
#define BN 64
#define BK 8
#define RM 4
#define RN 4
extern "C" __global__ void __launch_bounds__(256)
    gemm_regblock_f32(int m, int n, int k, const float* a, const float* b, float* c) {
    // A's tile is stored transposed (as[p][row]) so the inner loop reads
    // both tiles along their contiguous dimension.
    __shared__ __align__(16) float as[BK][BM];
    __shared__ __align__(16) float bs[BK][BN];
    int tid = (int)threadIdx.x;
    int row0 = (int)blockIdx.y * BM, col0 = (int)blockIdx.x * BN;
    int ty = tid / (BN / RN), tx = tid % (BN / RN);  // this thread's 4×4 block of the tile
    float acc[RM][RN];
    for (int r = 0; r < RM; ++r)
        for (int s = 0; s < RN; ++s) acc[r][s] = 0.0f;
    // float4 loads need 16-byte aligned addresses: every row must start on
    // a multiple of 4 floats.
    bool a_vec = (k % 4 == 0) && (((unsigned long long)a & 15ull) == 0);
    bool b_vec = (n % 4 == 0) && (((unsigned long long)b & 15ull) == 0);
    for (int p0 = 0; p0 < k; p0 += BK) {
        // A tile: 64 rows × 8 columns = 128 float4 (threads 0..127) or
        // 512 scalars (2 per thread).
        if (a_vec && p0 + BK <= k) {
            if (tid < BM * BK / 4) {
                int r = tid / (BK / 4), q = (tid % (BK / 4)) * 4;
                float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                if (row0 + r < m) v = *reinterpret_cast<const float4*>(a + (long long)(row0 + r) * k + p0 + q);
                as[q][r] = v.x;
                as[q + 1][r] = v.y;
                as[q + 2][r] = v.z;
                as[q + 3][r] = v.w;
            }
        } else {
            for (int e = tid; e < BM * BK; e += 256) {
                int r = e / BK, q = e % BK;
                as[q][r] = (row0 + r < m && p0 + q < k) ? a[(long long)(row0 + r) * k + p0 + q] : 0.0f;
            }
        }
        // B tile: 8 rows × 64 columns.
        if (b_vec && col0 + BN <= n) {
            if (tid < BK * BN / 4) {
                int q = tid / (BN / 4), s = (tid % (BN / 4)) * 4;
                float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                if (p0 + q < k) v = *reinterpret_cast<const float4*>(b + (long long)(p0 + q) * n + col0 + s);
                *reinterpret_cast<float4*>(&bs[q][s]) = v;
            }
        } else {
            for (int e = tid; e < BK * BN; e += 256) {
                int q = e / BN, s = e % BN;
                bs[q][s] = (p0 + q < k && col0 + s < n) ? b[(long long)(p0 + q) * n + col0 + s] : 0.0f;
            }
        }
        __syncthreads();
        int steps = min(BK, k - p0);
        for (int p = 0; p < steps; ++p) {
            float ra[RM], rb[RN];
            for (int r = 0; r < RM; ++r) ra[r] = as[p][ty * RM + r];
            for (int s = 0; s < RN; ++s) rb[s] = bs[p][tx * RN + s];
            for (int r = 0; r < RM; ++r)
                for (int s = 0; s < RN; ++s) acc[r][s] += ra[r] * rb[s];
        }
        __syncthreads();
    }
    for (int r = 0; r < RM; ++r) {
        int i = row0 + ty * RM + r;
        if (i >= m) break;
        for (int s = 0; s < RN; ++s) {
            int j = col0 + tx * RN + s;
            if (j < n) c[(long long)i * n + j] = acc[r][s];
        }
    }
}
CANDLE_KERNEL(gemm_regblock_f32)
// ANCHOR_END: gemm_regblock

// ANCHOR: gemm_batched
// The product the backend uses, for every float dtype: batched, and with
// arbitrary strides, so a transposed or broadcast operand is read in place
// (a batch stride of 0 broadcasts one matrix over the batch).
//
//   C[z] = A[z]·B[z],  A[z][i][p] = a[z·a_batch + i·a_row + p·a_col],
//                      B[z][p][j] = b[z·b_batch + p·b_row + j·b_col],
//   C contiguous [batch, m, n].
//
// Kernel `gemm_batched_<dtype>(long long batch, int m, int n, int k,
//     const T* a, long long a_batch, long long a_row, long long a_col,
//     const T* b, long long b_batch, long long b_row, long long b_col,
//     T* c)`: 16×16 threads, grid (⌈n/16⌉, ⌈m/16⌉, min(batch, 65535)),
// shared-memory tiles as in `gemm_tiled_f32`, accumulating in f32 (f64
// for f64) and rounding once.
template <typename T>
__device__ void gemm_batched_kernel(long long batch, int m, int n, int k,
                                    const typename Elem<T>::Storage* a, long long a_batch,
                                    long long a_row, long long a_col,
                                    const typename Elem<T>::Storage* b, long long b_batch,
                                    long long b_row, long long b_col,
                                    typename Elem<T>::Storage* c) {
    typedef typename Elem<T>::Compute C;
    __shared__ C as[TILE][TILE];
    __shared__ C bs[TILE][TILE];
    int tx = (int)threadIdx.x, ty = (int)threadIdx.y;
    int i = (int)blockIdx.y * TILE + ty, j = (int)blockIdx.x * TILE + tx;
    for (long long z = blockIdx.z; z < batch; z += gridDim.z) {
        const typename Elem<T>::Storage* az = a + z * a_batch;
        const typename Elem<T>::Storage* bz = b + z * b_batch;
        C acc = C(0);
        for (int p0 = 0; p0 < k; p0 += TILE) {
            as[ty][tx] = (i < m && p0 + tx < k) ? Elem<T>::load(az[i * a_row + (p0 + tx) * a_col]) : C(0);
            bs[ty][tx] = (p0 + ty < k && j < n) ? Elem<T>::load(bz[(p0 + ty) * b_row + j * b_col]) : C(0);
            __syncthreads();
            int steps = min(TILE, k - p0);
            for (int p = 0; p < steps; ++p) acc += as[ty][p] * bs[p][tx];
            __syncthreads();
        }
        if (i < m && j < n) c[(z * m + i) * n + j] = Elem<T>::store(acc);
    }
}

#define GEMM_BATCHED(suffix, T)                                                                   \
    extern "C" __global__ void gemm_batched_##suffix(                                             \
        long long batch, int m, int n, int k, const Elem<T>::Storage* a, long long a_batch,       \
        long long a_row, long long a_col, const Elem<T>::Storage* b, long long b_batch,           \
        long long b_row, long long b_col, Elem<T>::Storage* c) {                                  \
        gemm_batched_kernel<T>(batch, m, n, k, a, a_batch, a_row, a_col, b, b_batch, b_row,       \
                               b_col, c);                                                         \
    }                                                                                             \
    CANDLE_KERNEL(gemm_batched_##suffix)
CANDLE_FOR_FLOAT_DTYPES(GEMM_BATCHED)
// ANCHOR_END: gemm_batched
