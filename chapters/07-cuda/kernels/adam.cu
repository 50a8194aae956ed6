// The Adam / AdamW update, in place, one thread per parameter element:
// the same arithmetic as chapter 06's fused program, in the same order,
// in the parameter's dtype (f32 for f16 and bf16 parameters, rounded once
// when stored), so the emulator matches the CPU bit for bit.
//
// With `t` the step count and `g` the gradient:
//
//   g ← −g                          if maximizing
//   g ← g + λ·p                     Adam's weight decay (an L2 penalty), or
//   p ← p·(1 − η·λ)                 AdamW's (decoupled: not rescaled by v)
//   m ← β₁·m + (1 − β₁)·g
//   v ← β₂·v + (1 − β₂)·g²
//   v̂ ← max(v̂_max, v)              AMSGrad only (`v_max` not null)
//   p ← p − η/(1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + ε)
//
// The host computes the step-dependent numbers (`step_size = η/(1 − β₁ᵗ)`,
// `sqrt_bias2 = √(1 − β₂ᵗ)`, `shrink = 1 − η·λ`) once per step and passes
// them as arguments: the kernel is the same at every step.
#include "candle.cuh"

__device__ __forceinline__ float a_mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double a_mul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float a_add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double a_add(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float a_sqrt(float a) { return sqrtf(a); }
__device__ __forceinline__ double a_sqrt(double a) { return sqrt(a); }

// ANCHOR: adam
// Flags: bit 0, weight decay on (`weight_decay != 0`); bit 1, decoupled
// (AdamW); bit 2, maximize.
template <typename T>
__device__ void adam_kernel(long long n, typename Elem<T>::Storage* p,
                            const typename Elem<T>::Storage* g, typename Elem<T>::Storage* m,
                            typename Elem<T>::Storage* v, typename Elem<T>::Storage* v_max,
                            double beta1, double one_minus_beta1, double beta2,
                            double one_minus_beta2, double sqrt_bias2, double eps,
                            double step_size, double weight_decay, double shrink, int flags) {
    typedef typename Elem<T>::Compute C;
    const C b1 = (C)beta1, r1 = (C)one_minus_beta1, b2 = (C)beta2, r2 = (C)one_minus_beta2;
    const C bias2 = (C)sqrt_bias2, e = (C)eps, step = (C)step_size, wd = (C)weight_decay,
            keep = (C)shrink;
    CANDLE_GRID_STRIDE(i, n) {
        C pi = Elem<T>::load(p[i]), gi = Elem<T>::load(g[i]);
        if (flags & 4) gi = -gi;
        if (flags & 1) {
            if (flags & 2)
                pi = a_mul(pi, keep);
            else
                gi = a_add(gi, a_mul(wd, pi));
        }
        C mi = a_add(a_mul(b1, Elem<T>::load(m[i])), a_mul(r1, gi));
        C vi = a_add(a_mul(b2, Elem<T>::load(v[i])), a_mul(r2, a_mul(gi, gi)));
        C vh = vi;
        if (v_max) {
            C old = Elem<T>::load(v_max[i]);
            vh = (old != old || old > vi) ? old : vi;  // NaN-propagating max
            v_max[i] = Elem<T>::store(vh);
        }
        C denom = a_add(a_sqrt(vh) / bias2, e);
        p[i] = Elem<T>::store(pi - a_mul(step, mi / denom));
        m[i] = Elem<T>::store(mi);
        v[i] = Elem<T>::store(vi);
    }
}
// ANCHOR_END: adam

// Kernel `adam_<dtype>(long long n, T* p, const T* g, T* m, T* v,
//     T* v_max, double beta1, double one_minus_beta1, double beta2,
//     double one_minus_beta2, double sqrt_bias2, double eps,
//     double step_size, double weight_decay, double shrink, int flags)`;
// `v_max` null unless AMSGrad.
#define ADAM(suffix, T)                                                                           \
    extern "C" __global__ void adam_##suffix(                                                     \
        long long n, Elem<T>::Storage* p, const Elem<T>::Storage* g, Elem<T>::Storage* m,         \
        Elem<T>::Storage* v, Elem<T>::Storage* v_max, double beta1, double one_minus_beta1,       \
        double beta2, double one_minus_beta2, double sqrt_bias2, double eps, double step_size,    \
        double weight_decay, double shrink, int flags) {                                          \
        adam_kernel<T>(n, p, g, m, v, v_max, beta1, one_minus_beta1, beta2, one_minus_beta2,      \
                       sqrt_bias2, eps, step_size, weight_decay, shrink, flags);                  \
    }                                                                                             \
    CANDLE_KERNEL(adam_##suffix)
CANDLE_FOR_FLOAT_DTYPES(ADAM)
