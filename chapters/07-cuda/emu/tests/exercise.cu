// Exercise: a matrix transpose through shared memory.
//
// `transpose_naive_f32` reads rows (coalesced) but writes columns: each
// warp's 32 writes land 32 rows apart, 32 memory transactions instead of
// one. The fix is to stage a 32×32 tile in shared memory: read a tile of
// rows, `__syncthreads()`, write the tile's columns as rows of the output.
// The `+ 1` padding column keeps a warp reading a column of the tile from
// hitting one shared-memory bank 32 times.
//
// Write `transpose_tiled_f32` (launched with 32×8 threads per block and a
// grid of ⌈cols/32⌉ × ⌈rows/32⌉ blocks), then enable the test
// `exercise_transpose_tiled_matches_naive` in tests/emulator_checks.rs.
#include "candle.cuh"

// ANCHOR: transpose_naive
// `out[c][r] = in[r][c]` for `in` of `rows × cols`, one thread per element.
extern "C" __global__ void transpose_naive_f32(int rows, int cols, const float* in, float* out) {
    int c = (int)(blockIdx.x * 32 + threadIdx.x);
    int r0 = (int)(blockIdx.y * 32);
    for (int r = r0 + (int)threadIdx.y; r < r0 + 32; r += (int)blockDim.y)
        if (r < rows && c < cols) out[(long long)c * rows + r] = in[(long long)r * cols + c];
}
CANDLE_KERNEL(transpose_naive_f32)
// ANCHOR_END: transpose_naive

// ANCHOR: transpose_tiled
extern "C" __global__ void transpose_tiled_f32(int rows, int cols, const float* in, float* out) {
    __shared__ float tile[32][33];
    // TODO: load the tile of rows `blockIdx.y·32…` and columns `blockIdx.x·32…`
    // into `tile`, wait for the whole block, then write it transposed.
    (void)rows;
    (void)cols;
    (void)in;
    (void)out;
    (void)tile;
}
CANDLE_KERNEL(transpose_tiled_f32)
// ANCHOR_END: transpose_tiled
