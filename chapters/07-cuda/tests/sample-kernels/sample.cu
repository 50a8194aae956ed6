// A tiny kernel file of the driver's own tests: it proves the
// ahead-of-time pipeline (scripts/build-ptx.sh -> PTX -> the driver's
// JIT) and the launch path without depending on the chapter's kernels.

// out[i] = a * in[i], one thread per element in a grid-stride loop.
extern "C" __global__ void sample_scale(float *out, const float *in, float a,
                                        unsigned long long n) {
    const unsigned long long step = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
         i < n; i += step) {
        out[i] = a * in[i];
    }
}

// Writes through whatever pointer it is given: with a bad one, the
// device faults (CUDA_ERROR_ILLEGAL_ADDRESS, a sticky error).
extern "C" __global__ void sample_poke(float *p) {
    if (threadIdx.x == 0 && blockIdx.x == 0) {
        p[0] = 1.0f;
    }
}
