// Random numbers on the device with Philox 4×32-10, reproducing
// `chapter_02::philox` bit for bit: the same (seed, offset) gives the same
// tensor on the CPU, the emulator and the GPU.
//
// The stream is the sequence of 32-bit words of the Philox blocks
// `0, 1, 2, …` (word `w` is word `w mod 4` of block `w / 4`, block `b` is
// `philox([b_lo, b_hi, 0, 0], [seed_lo, seed_hi])`). A draw starting at
// word `offset` gives element `i` the word `offset + i` (two words,
// `offset + 2i` and `offset + 2i + 1`, for f64). Since a word is a pure
// function of its index, each thread computes its own: no state, no
// sequential dependence. (A thread recomputes a whole block for the one or
// two words it needs: four times the arithmetic of sharing a block between
// four elements, and still far from the memory bound.)
#include "candle.cuh"

// ANCHOR: philox
// Ten rounds of: multiply words 0 and 2 by constants, keeping both halves
// of the 64-bit products; mix the high halves with the other words and
// the key; bump the key by two Weyl constants between rounds.
struct Philox {
    unsigned int c[4];
};
__device__ __forceinline__ Philox philox4x32_10(unsigned int c0, unsigned int c1, unsigned int k0,
                                                unsigned int k1) {
    const unsigned int M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
    const unsigned int W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
    unsigned int c[4] = {c0, c1, 0u, 0u};
    for (int r = 0; r < 10; ++r) {
        if (r > 0) {
            k0 += W0;
            k1 += W1;
        }
        unsigned int hi0 = __umulhi(M0, c[0]), lo0 = M0 * c[0];
        unsigned int hi1 = __umulhi(M1, c[2]), lo1 = M1 * c[2];
        unsigned int n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
        c[0] = n0;
        c[1] = lo1;
        c[2] = n2;
        c[3] = lo0;
    }
    Philox out;
    for (int i = 0; i < 4; ++i) out.c[i] = c[i];
    return out;
}

// Word `w` of the stream keyed by `seed`, remembering the last block so
// two words of one block cost one Philox call.
struct Words {
    unsigned long long seed;
    unsigned long long block;
    Philox value;
    bool valid;
    __device__ unsigned int get(unsigned long long w) {
        unsigned long long b = w / 4;
        if (!valid || b != block) {
            value = philox4x32_10((unsigned int)b, (unsigned int)(b >> 32), (unsigned int)seed,
                                  (unsigned int)(seed >> 32));
            block = b;
            valid = true;
        }
        return value.c[w % 4];
    }
};
// ANCHOR_END: philox

// ANCHOR: uniform
// A word as a uniform in [0, 1) with 24 random bits (exact in f32); two
// words as one with 53 bits, for f64.
__device__ __forceinline__ double unit_f32(unsigned int w) {
    return (double)(w >> 8) * (1.0 / 16777216.0);
}
__device__ __forceinline__ double unit_f64(unsigned int w0, unsigned int w1) {
    unsigned long long bits = ((unsigned long long)w1 << 32) | w0;
    return (double)(bits >> 11) * (1.0 / 9007199254740992.0);
}
// The uniform of draw `i` for a tensor of `T`.
template <typename T>
__device__ __forceinline__ double unit_of(Words& words, unsigned long long offset, long long i) {
    return unit_f32(words.get(offset + (unsigned long long)i));
}
template <>
__device__ __forceinline__ double unit_of<double>(Words& words, unsigned long long offset, long long i) {
    unsigned long long w = offset + 2ull * (unsigned long long)i;
    unsigned int w0 = words.get(w);
    return unit_f64(w0, words.get(w + 1));
}

// Kernel `random_uniform_<dtype>(long long n, unsigned long long seed,
//     unsigned long long offset, double lo, double hi, T* out)`:
// `lo + (hi − lo)·u` in f64, rounded once.
template <typename T>
__device__ void uniform_kernel(long long n, unsigned long long seed, unsigned long long offset,
                               double lo, double hi, typename Elem<T>::Storage* out) {
    Words words = {seed, 0, Philox(), false};
    CANDLE_GRID_STRIDE(i, n) {
        double u = unit_of<T>(words, offset, i);
        out[i] = Elem<T>::from_f64(__dadd_rn(lo, __dmul_rn(hi - lo, u)));
    }
}

// Kernel `random_bernoulli_<dtype>(long long n, unsigned long long seed,
//     unsigned long long offset, double p, T* out)`: 1 if `u < p` else 0,
// one word per element whatever the dtype.
template <typename T>
__device__ void bernoulli_kernel(long long n, unsigned long long seed, unsigned long long offset,
                                 double p, typename Elem<T>::Storage* out) {
    Words words = {seed, 0, Philox(), false};
    CANDLE_GRID_STRIDE(i, n) {
        double u = unit_f32(words.get(offset + (unsigned long long)i));
        out[i] = Elem<T>::from_f64(u < p ? 1.0 : 0.0);
    }
}
// ANCHOR_END: uniform

// ANCHOR: normal
// Kernel `random_normal_<dtype>(long long n, unsigned long long seed,
//     unsigned long long offset, double mean, double std, T* out)`:
// Box–Muller, one thread per pair of elements `2j, 2j + 1`, from the
// uniforms `u₁, u₂` of draws `2j, 2j + 1`:
//
//   r = √(−2 ln(1 − u₁)),  θ = 2π·u₂,  out = mean + std·r·(cos θ, sin θ)
template <typename T>
__device__ void normal_kernel(long long n, unsigned long long seed, unsigned long long offset,
                              double mean, double std, typename Elem<T>::Storage* out) {
    Words words = {seed, 0, Philox(), false};
    CANDLE_GRID_STRIDE(j, (n + 1) / 2) {
        double u1 = unit_of<T>(words, offset, 2 * j);
        double u2 = unit_of<T>(words, offset, 2 * j + 1);
        double r = sqrt(-2.0 * log(1.0 - u1));
        double theta = __dmul_rn(6.283185307179586, u2);
        double sr = __dmul_rn(std, r);
        out[2 * j] = Elem<T>::from_f64(__dadd_rn(mean, __dmul_rn(sr, cos(theta))));
        if (2 * j + 1 < n) out[2 * j + 1] = Elem<T>::from_f64(__dadd_rn(mean, __dmul_rn(sr, sin(theta))));
    }
}
// ANCHOR_END: normal

#define RANDOM_FLOAT(suffix, T)                                                                   \
    extern "C" __global__ void random_uniform_##suffix(long long n, unsigned long long seed,      \
                                                       unsigned long long offset, double lo,      \
                                                       double hi, Elem<T>::Storage* out) {        \
        uniform_kernel<T>(n, seed, offset, lo, hi, out);                                          \
    }                                                                                             \
    CANDLE_KERNEL(random_uniform_##suffix)                                                        \
    extern "C" __global__ void random_normal_##suffix(long long n, unsigned long long seed,       \
                                                      unsigned long long offset, double mean,     \
                                                      double std, Elem<T>::Storage* out) {        \
        normal_kernel<T>(n, seed, offset, mean, std, out);                                        \
    }                                                                                             \
    CANDLE_KERNEL(random_normal_##suffix)
CANDLE_FOR_FLOAT_DTYPES(RANDOM_FLOAT)

#define RANDOM_BERNOULLI(suffix, T)                                                               \
    extern "C" __global__ void random_bernoulli_##suffix(long long n, unsigned long long seed,    \
                                                         unsigned long long offset, double p,     \
                                                         Elem<T>::Storage* out) {                 \
        bernoulli_kernel<T>(n, seed, offset, p, out);                                             \
    }                                                                                             \
    CANDLE_KERNEL(random_bernoulli_##suffix)
CANDLE_FOR_ALL_DTYPES(RANDOM_BERNOULLI)
