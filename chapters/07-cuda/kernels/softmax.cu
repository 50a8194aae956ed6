// Row-wise kernels: softmax, log-softmax, layer norm and cross entropy,
// each with its backward, over the last axis of a contiguous
// `[rows, cols]` matrix. One block per row (grid-stride over rows),
// `blockDim.x` a multiple of 32; each thread handles the columns
// `t, t + B, t + 2B, …` and the block combines through `block_reduce`.
//
// Arithmetic is in f32 for f32, f16 and bf16 (one rounding per output),
// in f64 for f64.
#include "candle.cuh"

__device__ __forceinline__ float m_exp_(float x) { return expf(x); }
__device__ __forceinline__ double m_exp_(double x) { return exp(x); }
__device__ __forceinline__ float m_log_(float x) { return logf(x); }
__device__ __forceinline__ double m_log_(double x) { return log(x); }
__device__ __forceinline__ float m_pow_(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double m_pow_(double x, double y) { return pow(x, y); }
__device__ __forceinline__ float neg_inf_(float) { return -__int_as_float(0x7f800000); }
__device__ __forceinline__ double neg_inf_(double) { return -__longlong_as_double(0x7ff0000000000000LL); }

// ANCHOR: online_softmax
// The online softmax normaliser (Milakov & Gimelshein, 2018). Softmax
// needs `m = max x` (so no `exp` overflows) and `d = Σ exp(xⱼ − m)`, which
// looks like two passes. One pass suffices: keep the running pair (m, d)
// and, when a larger x arrives, rescale the sum to the new max:
//
//   x ≤ m:  d ← d + exp(x − m)
//   x > m:  d ← d·exp(m − x) + 1,  m ← x
//
// Two partial pairs merge the same way, which is what makes it a
// reduction the block can do in any order:
//
//   (m₁, d₁) ⊕ (m₂, d₂) = (m, d₁·exp(m₁ − m) + d₂·exp(m₂ − m)),  m = max(m₁, m₂)
template <typename C>
struct MaxSum {
    C m, d;
};
template <typename C>
__device__ __forceinline__ MaxSum<C> max_sum_push(MaxSum<C> s, C x) {
    if (x > s.m) {
        s.d = s.d * m_exp_(s.m - x) + C(1);
        s.m = x;
    } else {
        s.d = s.d + m_exp_(x - s.m);
    }
    return s;
}
template <typename C>
__device__ __forceinline__ MaxSum<C> max_sum_merge(MaxSum<C> a, MaxSum<C> b) {
    if (a.d == C(0)) return b;  // an empty part (a thread with no columns)
    if (b.d == C(0)) return a;
    C m = a.m > b.m ? a.m : b.m;
    MaxSum<C> r;
    r.m = m;
    r.d = a.d * m_exp_(a.m - m) + b.d * m_exp_(b.m - m);
    return r;
}

// The block-wide merge: a shuffle moves at most 8 bytes, so m and d
// travel separately.
template <typename C>
__device__ MaxSum<C> block_max_sum(MaxSum<C> v) {
    for (int o = 16; o > 0; o /= 2) {
        MaxSum<C> other;
        other.m = __shfl_down_sync(0xffffffffu, v.m, o);
        other.d = __shfl_down_sync(0xffffffffu, v.d, o);
        v = max_sum_merge(v, other);
    }
    __shared__ MaxSum<C> partial[32];
    __shared__ MaxSum<C> total;
    unsigned int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        MaxSum<C> empty;
        empty.m = neg_inf_(C(0));
        empty.d = C(0);
        v = lane < blockDim.x / 32 ? partial[lane] : empty;
        for (int o = 16; o > 0; o /= 2) {
            MaxSum<C> other;
            other.m = __shfl_down_sync(0xffffffffu, v.m, o);
            other.d = __shfl_down_sync(0xffffffffu, v.d, o);
            v = max_sum_merge(v, other);
        }
        if (lane == 0) total = v;
    }
    __syncthreads();
    v = total;
    __syncthreads();
    return v;
}

// `y = exp(x − m) / d` (softmax) or `y = x − m − log d` (log-softmax):
// one pass to find (m, d), one to write.
template <typename T, bool LOG>
__device__ void softmax_rows(long long rows, long long cols, const typename Elem<T>::Storage* x,
                             typename Elem<T>::Storage* y) {
    typedef typename Elem<T>::Compute C;
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const typename Elem<T>::Storage* xr = x + r * cols;
        typename Elem<T>::Storage* yr = y + r * cols;
        MaxSum<C> s;
        s.m = neg_inf_(C(0));
        s.d = C(0);
        for (long long c = threadIdx.x; c < cols; c += blockDim.x)
            s = max_sum_push(s, Elem<T>::load(xr[c]));
        s = block_max_sum(s);
        C inv = C(1) / s.d, log_d = m_log_(s.d);
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) {
            C v = Elem<T>::load(xr[c]) - s.m;
            yr[c] = Elem<T>::store(LOG ? v - log_d : m_exp_(v) * inv);
        }
    }
}
// ANCHOR_END: online_softmax

// ANCHOR: softmax_backward
// Backwards, with `y` the forward's output and `g` the gradient of `y`:
//
//   softmax:      dx = y ⊙ (g − Σⱼ gⱼyⱼ)
//   log-softmax:  dx = g − exp(y) · Σⱼ gⱼ
template <typename T, bool LOG>
__device__ void softmax_backward_rows(long long rows, long long cols,
                                      const typename Elem<T>::Storage* y,
                                      const typename Elem<T>::Storage* g,
                                      typename Elem<T>::Storage* dx) {
    typedef typename Elem<T>::Compute C;
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        long long base = r * cols;
        C acc = C(0);
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) {
            C gv = Elem<T>::load(g[base + c]);
            acc += LOG ? gv : gv * Elem<T>::load(y[base + c]);
        }
        C total = block_reduce<SumR<C> >(acc);
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) {
            C yv = Elem<T>::load(y[base + c]), gv = Elem<T>::load(g[base + c]);
            dx[base + c] = Elem<T>::store(LOG ? gv - m_exp_(yv) * total : yv * (gv - total));
        }
    }
}
// ANCHOR_END: softmax_backward

// Kernels `softmax_<dtype>` and `log_softmax_<dtype>`
//   (long long rows, long long cols, const T* x, T* y);
// `softmax_backward_<dtype>` and `log_softmax_backward_<dtype>`
//   (long long rows, long long cols, const T* y, const T* g, T* dx).
#define SOFTMAX(suffix, T)                                                                        \
    extern "C" __global__ void softmax_##suffix(long long rows, long long cols,                   \
                                                const Elem<T>::Storage* x, Elem<T>::Storage* y) { \
        softmax_rows<T, false>(rows, cols, x, y);                                                 \
    }                                                                                             \
    CANDLE_KERNEL(softmax_##suffix)                                                               \
    extern "C" __global__ void log_softmax_##suffix(long long rows, long long cols,               \
                                                    const Elem<T>::Storage* x,                    \
                                                    Elem<T>::Storage* y) {                        \
        softmax_rows<T, true>(rows, cols, x, y);                                                  \
    }                                                                                             \
    CANDLE_KERNEL(log_softmax_##suffix)                                                           \
    extern "C" __global__ void softmax_backward_##suffix(                                         \
        long long rows, long long cols, const Elem<T>::Storage* y, const Elem<T>::Storage* g,     \
        Elem<T>::Storage* dx) {                                                                   \
        softmax_backward_rows<T, false>(rows, cols, y, g, dx);                                    \
    }                                                                                             \
    CANDLE_KERNEL(softmax_backward_##suffix)                                                      \
    extern "C" __global__ void log_softmax_backward_##suffix(                                     \
        long long rows, long long cols, const Elem<T>::Storage* y, const Elem<T>::Storage* g,     \
        Elem<T>::Storage* dx) {                                                                   \
        softmax_backward_rows<T, true>(rows, cols, y, g, dx);                                     \
    }                                                                                             \
    CANDLE_KERNEL(log_softmax_backward_##suffix)
CANDLE_FOR_FLOAT_DTYPES(SOFTMAX)

// ANCHOR: layer_norm
// Layer norm of each row: `μ = mean(x)`, `σ² = mean((x − μ)²)` (biased),
// `r = (σ² + ε)^(−1/2)`, `y = (x − μ)·r ⊙ γ + β`. Two reductions (the
// mean, then the variance about it: more accurate than E[x²] − μ²). `γ`
// and `β` may be null (no affine part); `mean` and `rstd` get one value
// per row for the backward.
template <typename T>
__device__ void layer_norm_rows(long long rows, long long cols, const typename Elem<T>::Storage* x,
                                const typename Elem<T>::Storage* gamma,
                                const typename Elem<T>::Storage* beta,
                                typename Elem<T>::Storage* y, typename Elem<T>::Storage* mean,
                                typename Elem<T>::Storage* rstd, double eps) {
    typedef typename Elem<T>::Compute C;
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const typename Elem<T>::Storage* xr = x + r * cols;
        C acc = C(0);
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) acc += Elem<T>::load(xr[c]);
        C mu = block_reduce<SumR<C> >(acc) / (C)cols;
        acc = C(0);
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) {
            C d = Elem<T>::load(xr[c]) - mu;
            acc += d * d;
        }
        C var = block_reduce<SumR<C> >(acc) / (C)cols;
        C rs = m_pow_(var + (C)eps, C(-0.5));
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) {
            C v = (Elem<T>::load(xr[c]) - mu) * rs;
            if (gamma) v = v * Elem<T>::load(gamma[c]);
            if (beta) v = v + Elem<T>::load(beta[c]);
            y[r * cols + c] = Elem<T>::store(v);
        }
        if (threadIdx.x == 0) {
            mean[r] = Elem<T>::store(mu);
            rstd[r] = Elem<T>::store(rs);
        }
    }
}

// The backward of a row, with `x̂ = (x − μ)·r` and `ĝ = g ⊙ γ` (or `g`):
//
//   dx = r · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂))
//
// (normalising makes y blind to shifting x, which removes mean(ĝ), and to
// scaling it, which removes the x̂ component).
template <typename T>
__device__ void layer_norm_backward_rows(long long rows, long long cols,
                                         const typename Elem<T>::Storage* g,
                                         const typename Elem<T>::Storage* x,
                                         const typename Elem<T>::Storage* mean,
                                         const typename Elem<T>::Storage* rstd,
                                         const typename Elem<T>::Storage* gamma,
                                         typename Elem<T>::Storage* dx) {
    typedef typename Elem<T>::Compute C;
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        long long base = r * cols;
        C mu = Elem<T>::load(mean[r]), rs = Elem<T>::load(rstd[r]);
        C sum_g = C(0), sum_gx = C(0);
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) {
            C gh = Elem<T>::load(g[base + c]);
            if (gamma) gh = gh * Elem<T>::load(gamma[c]);
            C xh = (Elem<T>::load(x[base + c]) - mu) * rs;
            sum_g += gh;
            sum_gx += gh * xh;
        }
        C mean_g = block_reduce<SumR<C> >(sum_g) / (C)cols;
        C mean_gx = block_reduce<SumR<C> >(sum_gx) / (C)cols;
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) {
            C gh = Elem<T>::load(g[base + c]);
            if (gamma) gh = gh * Elem<T>::load(gamma[c]);
            C xh = (Elem<T>::load(x[base + c]) - mu) * rs;
            dx[base + c] = Elem<T>::store((gh - mean_g - xh * mean_gx) * rs);
        }
    }
}

// `dγ = Σ_rows g ⊙ x̂` and `dβ = Σ_rows g`: sums down the columns, one
// thread per column (consecutive threads read consecutive columns of a
// row: coalesced), each summing its column in a fixed order, so the result
// is deterministic (no atomics). Either output may be null.
template <typename T>
__device__ void layer_norm_backward_params(long long rows, long long cols,
                                           const typename Elem<T>::Storage* g,
                                           const typename Elem<T>::Storage* x,
                                           const typename Elem<T>::Storage* mean,
                                           const typename Elem<T>::Storage* rstd,
                                           typename Elem<T>::Storage* dgamma,
                                           typename Elem<T>::Storage* dbeta) {
    typedef typename Elem<T>::Compute C;
    CANDLE_GRID_STRIDE(c, cols) {
        C sg = C(0), sgx = C(0);
        for (long long r = 0; r < rows; ++r) {
            C gv = Elem<T>::load(g[r * cols + c]);
            C xh = (Elem<T>::load(x[r * cols + c]) - Elem<T>::load(mean[r])) * Elem<T>::load(rstd[r]);
            sg += gv;
            sgx += gv * xh;
        }
        if (dgamma) dgamma[c] = Elem<T>::store(sgx);
        if (dbeta) dbeta[c] = Elem<T>::store(sg);
    }
}
// ANCHOR_END: layer_norm

// Kernels:
// `layer_norm_<dtype>(long long rows, long long cols, const T* x,
//     const T* gamma, const T* beta, T* y, T* mean, T* rstd, double eps)`
//   (gamma, beta may be null); one block per row.
// `layer_norm_backward_<dtype>(long long rows, long long cols, const T* g,
//     const T* x, const T* mean, const T* rstd, const T* gamma, T* dx)`
//   (gamma may be null); one block per row.
// `layer_norm_backward_params_<dtype>(long long rows, long long cols,
//     const T* g, const T* x, const T* mean, const T* rstd, T* dgamma,
//     T* dbeta)` (either output may be null); one thread per column.
#define LAYER_NORM(suffix, T)                                                                     \
    extern "C" __global__ void layer_norm_##suffix(                                               \
        long long rows, long long cols, const Elem<T>::Storage* x, const Elem<T>::Storage* gamma, \
        const Elem<T>::Storage* beta, Elem<T>::Storage* y, Elem<T>::Storage* mean,                \
        Elem<T>::Storage* rstd, double eps) {                                                     \
        layer_norm_rows<T>(rows, cols, x, gamma, beta, y, mean, rstd, eps);                       \
    }                                                                                             \
    CANDLE_KERNEL(layer_norm_##suffix)                                                            \
    extern "C" __global__ void layer_norm_backward_##suffix(                                      \
        long long rows, long long cols, const Elem<T>::Storage* g, const Elem<T>::Storage* x,     \
        const Elem<T>::Storage* mean, const Elem<T>::Storage* rstd,                               \
        const Elem<T>::Storage* gamma, Elem<T>::Storage* dx) {                                    \
        layer_norm_backward_rows<T>(rows, cols, g, x, mean, rstd, gamma, dx);                     \
    }                                                                                             \
    CANDLE_KERNEL(layer_norm_backward_##suffix)                                                   \
    extern "C" __global__ void layer_norm_backward_params_##suffix(                               \
        long long rows, long long cols, const Elem<T>::Storage* g, const Elem<T>::Storage* x,     \
        const Elem<T>::Storage* mean, const Elem<T>::Storage* rstd, Elem<T>::Storage* dgamma,     \
        Elem<T>::Storage* dbeta) {                                                                \
        layer_norm_backward_params<T>(rows, cols, g, x, mean, rstd, dgamma, dbeta);               \
    }                                                                                             \
    CANDLE_KERNEL(layer_norm_backward_params_##suffix)
CANDLE_FOR_FLOAT_DTYPES(LAYER_NORM)

// ANCHOR: cross_entropy
// Cross entropy of each row of logits against an integer label, with
// label smoothing `s` (the target is `(1 − s)·onehot + s/C`):
//
//   ℓ = lse − (1 − s)·x_label − (s/C)·Σⱼ xⱼ,   lse = m + log Σⱼ exp(xⱼ − m)
//
// A label of −1 marks an ignored row: its loss is 0. Any other label
// outside `[0, C)` is not read or used: the kernel writes it into
// `*error` (one of the offending labels, if several) and the row's loss is
// NaN; the backend checks `*error` (initialised to −1) and reports it. The
// row's `lse` is kept for the backward.
template <typename T>
__device__ void cross_entropy_rows(long long rows, long long cols,
                                   const typename Elem<T>::Storage* logits,
                                   const long long* labels, double smoothing,
                                   typename Elem<T>::Storage* loss, typename Elem<T>::Compute* lse_out,
                                   long long* error) {
    typedef typename Elem<T>::Compute C;
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const typename Elem<T>::Storage* xr = logits + r * cols;
        long long label = labels[r];
        bool ignored = label == -1;
        bool bad = !ignored && (label < 0 || label >= cols);
        MaxSum<C> s;
        s.m = neg_inf_(C(0));
        s.d = C(0);
        C sum_x = C(0);
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) {
            C v = Elem<T>::load(xr[c]);
            s = max_sum_push(s, v);
            sum_x += v;
        }
        s = block_max_sum(s);
        sum_x = block_reduce<SumR<C> >(sum_x);
        if (threadIdx.x == 0) {
            C lse = s.m + m_log_(s.d);
            lse_out[r] = lse;
            C l;
            if (ignored) {
                l = C(0);
            } else if (bad) {
                *error = label;
                l = C(0) / C(0);
            } else {
                C sm = (C)smoothing;
                l = lse - (C(1) - sm) * Elem<T>::load(xr[label]) - sm / (C)cols * sum_x;
            }
            loss[r] = Elem<T>::store(l);
        }
    }
}

// The backward: `dx = (softmax(x) − target) · g_row`, with softmax from the
// saved `lse` (`pⱼ = exp(xⱼ − lse)`), `g_row = grad[r · grad_stride]`
// (stride 0 broadcasts one number, as for a summed or averaged loss), and
// a zero row where the label is ignored (or out of range).
template <typename T>
__device__ void cross_entropy_backward_rows(long long rows, long long cols,
                                            const typename Elem<T>::Storage* logits,
                                            const long long* labels, const typename Elem<T>::Compute* lse,
                                            const typename Elem<T>::Storage* grad,
                                            long long grad_stride, double smoothing,
                                            typename Elem<T>::Storage* dx) {
    typedef typename Elem<T>::Compute C;
    C sm = (C)smoothing, uniform = sm / (C)cols;
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        long long label = labels[r];
        bool skip = label < 0 || label >= cols;
        C g = Elem<T>::load(grad[r * grad_stride]);
        C l = lse[r];
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) {
            C v = C(0);
            if (!skip) {
                C p = m_exp_(Elem<T>::load(logits[r * cols + c]) - l);
                C t = uniform + (c == label ? C(1) - sm : C(0));
                v = (p - t) * g;
            }
            dx[r * cols + c] = Elem<T>::store(v);
        }
    }
}
// ANCHOR_END: cross_entropy

// Kernels:
// `cross_entropy_<dtype>(long long rows, long long cols, const T* logits,
//     const long long* labels, double smoothing, T* loss, C* lse,
//     long long* error)`, `C` the compute type (f64 for f64, else f32);
//   one block per row.
// `cross_entropy_backward_<dtype>(long long rows, long long cols,
//     const T* logits, const long long* labels, const typename Elem<T>::Compute* lse,
//     const T* grad, long long grad_stride, double smoothing, T* dx)`;
//   one block per row.
#define CROSS_ENTROPY(suffix, T)                                                                  \
    extern "C" __global__ void cross_entropy_##suffix(                                            \
        long long rows, long long cols, const Elem<T>::Storage* logits, const long long* labels,  \
        double smoothing, Elem<T>::Storage* loss, Elem<T>::Compute* lse, long long* error) {                 \
        cross_entropy_rows<T>(rows, cols, logits, labels, smoothing, loss, lse, error);           \
    }                                                                                             \
    CANDLE_KERNEL(cross_entropy_##suffix)                                                         \
    extern "C" __global__ void cross_entropy_backward_##suffix(                                   \
        long long rows, long long cols, const Elem<T>::Storage* logits, const long long* labels,  \
        const Elem<T>::Compute* lse, const Elem<T>::Storage* grad, long long grad_stride, double smoothing,  \
        Elem<T>::Storage* dx) {                                                                   \
        cross_entropy_backward_rows<T>(rows, cols, logits, labels, lse, grad, grad_stride,        \
                                       smoothing, dx);                                            \
    }                                                                                             \
    CANDLE_KERNEL(cross_entropy_backward_##suffix)
CANDLE_FOR_FLOAT_DTYPES(CROSS_ENTROPY)
