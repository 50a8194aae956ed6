// Elementwise kernels: one thread per output element.
//
// Every kernel here has the same shape. Output element `i` (row-major,
// contiguous) is computed by one thread from the input elements at
// `strided_offset(view, i)`, so views (transposes, slices, broadcasts with
// stride 0) are read in place, never copied first. The grid-stride loop
// lets any grid cover any `n`.
//
// Kernel names are `<family>_<op>_<dtype>` with dtype one of f32, f64,
// f16, bf16, i64, u8. Half types are loaded into f32, computed in f32 and
// rounded once when stored, as the CPU backend does.
#include "candle.cuh"

// ANCHOR: math
// The math of `Compute` types, one name for f32 and f64.
__device__ __forceinline__ float m_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double m_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float m_exp(float x) { return expf(x); }
__device__ __forceinline__ double m_exp(double x) { return exp(x); }
__device__ __forceinline__ float m_log(float x) { return logf(x); }
__device__ __forceinline__ double m_log(double x) { return log(x); }
__device__ __forceinline__ float m_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double m_abs(double x) { return fabs(x); }
__device__ __forceinline__ float m_sin(float x) { return sinf(x); }
__device__ __forceinline__ double m_sin(double x) { return sin(x); }
__device__ __forceinline__ float m_cos(float x) { return cosf(x); }
__device__ __forceinline__ double m_cos(double x) { return cos(x); }
__device__ __forceinline__ float m_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double m_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float m_erf(float x) { return erff(x); }
__device__ __forceinline__ double m_erf(double x) { return erf(x); }
__device__ __forceinline__ float m_pow(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double m_pow(double x, double y) { return pow(x, y); }
// `x·m + a` with two roundings, like the CPU: a GPU compiler would
// otherwise fuse it into one `fma`, a different (if better) answer.
__device__ __forceinline__ float m_mul_add(float x, float m, float a) {
    return __fadd_rn(__fmul_rn(x, m), a);
}
__device__ __forceinline__ double m_mul_add(double x, double m, double a) {
    return __dadd_rn(__dmul_rn(x, m), a);
}
// ANCHOR_END: math

// ANCHOR: unary_ops
// One struct per unary op: `f(x, p0, p1)` in the compute type, with the
// op's constants (affine's `mul` and `add`, clamp's bounds, ...) as `p0`,
// `p1`, already converted to that type.
#define UNARY_OP(Name, expr)                                  \
    struct Name {                                             \
        template <typename C>                                 \
        __device__ static C f(C x, C p0, C p1) {              \
            (void)p0;                                         \
            (void)p1;                                         \
            return expr;                                      \
        }                                                     \
    };
UNARY_OP(OpNeg, -x)
UNARY_OP(OpRecip, C(1) / x)
UNARY_OP(OpSqr, x * x)
UNARY_OP(OpSqrt, m_sqrt(x))
UNARY_OP(OpExp, m_exp(x))
UNARY_OP(OpLog, m_log(x))
UNARY_OP(OpAbs, m_abs(x))
// Keeps 0, −0 and NaN as they are.
UNARY_OP(OpSign, x > C(0) ? C(1) : (x < C(0) ? C(-1) : x))
UNARY_OP(OpSin, m_sin(x))
UNARY_OP(OpCos, m_cos(x))
UNARY_OP(OpTanh, m_tanh(x))
// 1 / (1 + e^−x), never overflowing: for x < 0 it is e^x / (1 + e^x).
UNARY_OP(OpSigmoid, x >= C(0) ? C(1) / (C(1) + m_exp(-x)) : m_exp(x) / (C(1) + m_exp(x)))
UNARY_OP(OpRelu, x > C(0) ? x : C(0))
UNARY_OP(OpErf, m_erf(x))
UNARY_OP(OpAffine, m_mul_add(x, p0, p1))  // x·mul + add
UNARY_OP(OpPowf, m_pow(x, p0))
UNARY_OP(OpClamp, x < p0 ? p0 : (x > p1 ? p1 : x))  // min(max(x, lo), hi)
UNARY_OP(OpLeakyRelu, x > C(0) ? x : x * p0)
// ANCHOR_END: unary_ops

// ANCHOR: unary
// `y[i] = op(x[view(i)])`, for `i < n`.
template <typename T, typename Op>
__device__ void unary_kernel(long long n, Strided src, const typename Elem<T>::Storage* x,
                             typename Elem<T>::Storage* y, double p0, double p1) {
    typedef typename Elem<T>::Compute C;
    C a = (C)p0, b = (C)p1;
    CANDLE_GRID_STRIDE(i, n) {
        C v = Elem<T>::load(x[strided_offset(src, i)]);
        y[i] = Elem<T>::store(Op::template f<C>(v, a, b));
    }
}

// Kernel `unary_<op>_<dtype>(long long n, Strided src, const T* x, T* y,
//                            double p0, double p1)`:
// the same six parameters for every op; `p0`, `p1` are affine's (mul, add),
// powf's (e, unused), clamp's (min, max), leaky_relu's (slope, unused) and
// ignored by the others.
#define UNARY(op, Op, suffix, T)                                                              \
    extern "C" __global__ void unary_##op##_##suffix(long long n, Strided src,                \
                                                     const Elem<T>::Storage* x,               \
                                                     Elem<T>::Storage* y, double p0, double p1) { \
        unary_kernel<T, Op>(n, src, x, y, p0, p1);                                            \
    }                                                                                         \
    CANDLE_KERNEL(unary_##op##_##suffix)
// ANCHOR_END: unary

#define UNARY_FLOAT_OPS(suffix, T)                                                            \
    UNARY(neg, OpNeg, suffix, T) UNARY(recip, OpRecip, suffix, T) UNARY(sqr, OpSqr, suffix, T) \
    UNARY(sqrt, OpSqrt, suffix, T) UNARY(exp, OpExp, suffix, T) UNARY(log, OpLog, suffix, T)  \
    UNARY(abs, OpAbs, suffix, T) UNARY(sign, OpSign, suffix, T) UNARY(sin, OpSin, suffix, T)  \
    UNARY(cos, OpCos, suffix, T) UNARY(tanh, OpTanh, suffix, T)                               \
    UNARY(sigmoid, OpSigmoid, suffix, T) UNARY(relu, OpRelu, suffix, T)                       \
    UNARY(erf, OpErf, suffix, T) UNARY(affine, OpAffine, suffix, T)                           \
    UNARY(powf, OpPowf, suffix, T) UNARY(clamp, OpClamp, suffix, T)                           \
    UNARY(leaky_relu, OpLeakyRelu, suffix, T)
CANDLE_FOR_FLOAT_DTYPES(UNARY_FLOAT_OPS)

// ANCHOR: unary_int
// `i64` has the ops that stay in the integers, wrapping on overflow like
// Rust's `wrapping_*` (signed overflow is undefined in C++, so the
// arithmetic is done on unsigned values).
__device__ __forceinline__ long long wrap_neg(long long v) {
    return (long long)(0ull - (unsigned long long)v);
}
__device__ __forceinline__ long long wrap_add(long long a, long long b) {
    return (long long)((unsigned long long)a + (unsigned long long)b);
}
__device__ __forceinline__ long long wrap_sub(long long a, long long b) {
    return (long long)((unsigned long long)a - (unsigned long long)b);
}
__device__ __forceinline__ long long wrap_mul(long long a, long long b) {
    return (long long)((unsigned long long)a * (unsigned long long)b);
}
#define UNARY_INT(op, expr)                                                                       \
    extern "C" __global__ void unary_##op##_i64(long long n, Strided src, const long long* x,     \
                                                long long* y, double p0, double p1) {             \
        CANDLE_GRID_STRIDE(i, n) {                                                                \
            long long v = x[strided_offset(src, i)];                                              \
            y[i] = (expr);                                                                        \
        }                                                                                         \
        (void)p0;                                                                                 \
        (void)p1;                                                                                 \
    }                                                                                             \
    CANDLE_KERNEL(unary_##op##_i64)
UNARY_INT(neg, wrap_neg(v))
UNARY_INT(abs, v < 0 ? wrap_neg(v) : v)
UNARY_INT(sqr, wrap_mul(v, v))
UNARY_INT(sign, (long long)((v > 0) - (v < 0)))
UNARY_INT(relu, v > 0 ? v : 0)
// Clamped as an f64, then converted back (saturating), as the CPU does.
UNARY_INT(clamp, Elem<long long>::from_f64((double)v < p0 ? p0 : ((double)v > p1 ? p1 : (double)v)))
// ANCHOR_END: unary_int

// ANCHOR: binary
// `out[i] = op(x[a(i)], y[b(i)])`: both views have the output's shape,
// broadcasting already expressed as stride-0 dimensions.
#define BINARY_OP(Name, expr)                      \
    struct Name {                                  \
        template <typename C>                      \
        __device__ static C f(C x, C y) {          \
            return expr;                           \
        }                                          \
    };
BINARY_OP(OpAdd, x + y)
BINARY_OP(OpSub, x - y)
BINARY_OP(OpMul, x * y)
BINARY_OP(OpDiv, x / y)
BINARY_OP(OpPow, m_pow(x, y))
// NaN-propagating, like torch.maximum: a NaN on either side wins.
BINARY_OP(OpMaximum, (x != x || x > y) ? x : y)
BINARY_OP(OpMinimum, (x != x || x < y) ? x : y)

template <typename T, typename Op>
__device__ void binary_kernel(long long n, Strided a, const typename Elem<T>::Storage* x, Strided b,
                              const typename Elem<T>::Storage* y, typename Elem<T>::Storage* out) {
    typedef typename Elem<T>::Compute C;
    CANDLE_GRID_STRIDE(i, n) {
        C u = Elem<T>::load(x[strided_offset(a, i)]);
        C v = Elem<T>::load(y[strided_offset(b, i)]);
        out[i] = Elem<T>::store(Op::template f<C>(u, v));
    }
}

// Kernel `binary_<op>_<dtype>(long long n, Strided a, const T* x,
//                             Strided b, const T* y, T* out)`.
#define BINARY(op, Op, suffix, T)                                                               \
    extern "C" __global__ void binary_##op##_##suffix(long long n, Strided a,                   \
                                                      const Elem<T>::Storage* x, Strided b,     \
                                                      const Elem<T>::Storage* y,                \
                                                      Elem<T>::Storage* out) {                  \
        binary_kernel<T, Op>(n, a, x, b, y, out);                                               \
    }                                                                                           \
    CANDLE_KERNEL(binary_##op##_##suffix)
// ANCHOR_END: binary

#define BINARY_FLOAT_OPS(suffix, T)                                                             \
    BINARY(add, OpAdd, suffix, T) BINARY(sub, OpSub, suffix, T) BINARY(mul, OpMul, suffix, T)  \
    BINARY(div, OpDiv, suffix, T) BINARY(pow, OpPow, suffix, T)                                \
    BINARY(maximum, OpMaximum, suffix, T) BINARY(minimum, OpMinimum, suffix, T)
CANDLE_FOR_FLOAT_DTYPES(BINARY_FLOAT_OPS)

// Integer ops wrap; there is no integer `div` or `pow` (the op layer asks
// for a cast instead).
struct OpAddWrap {
    template <typename C>
    __device__ static C f(C x, C y) { return wrap_add(x, y); }
};
struct OpSubWrap {
    template <typename C>
    __device__ static C f(C x, C y) { return wrap_sub(x, y); }
};
struct OpMulWrap {
    template <typename C>
    __device__ static C f(C x, C y) { return wrap_mul(x, y); }
};
BINARY(add, OpAddWrap, i64, long long)
BINARY(sub, OpSubWrap, i64, long long)
BINARY(mul, OpMulWrap, i64, long long)
BINARY(maximum, OpMaximum, i64, long long)
BINARY(minimum, OpMinimum, i64, long long)

// ANCHOR: cmp
// Kernel `cmp_<op>_<dtype>(long long n, Strided a, const T* x, Strided b,
//                          const T* y, unsigned char* out)`: 1 where the
// comparison holds, else 0 (NaN compares unequal to everything).
#define CMP(op, expr, suffix, T)                                                              \
    extern "C" __global__ void cmp_##op##_##suffix(long long n, Strided a,                    \
                                                   const Elem<T>::Storage* x, Strided b,      \
                                                   const Elem<T>::Storage* y,                 \
                                                   unsigned char* out) {                      \
        CANDLE_GRID_STRIDE(i, n) {                                                            \
            Elem<T>::Compute u = Elem<T>::load(x[strided_offset(a, i)]);                      \
            Elem<T>::Compute v = Elem<T>::load(y[strided_offset(b, i)]);                      \
            out[i] = (expr) ? 1 : 0;                                                          \
        }                                                                                     \
    }                                                                                         \
    CANDLE_KERNEL(cmp_##op##_##suffix)
#define CMP_OPS(suffix, T)                                                                    \
    CMP(eq, u == v, suffix, T) CMP(ne, u != v, suffix, T) CMP(lt, u < v, suffix, T)           \
    CMP(le, u <= v, suffix, T) CMP(gt, u > v, suffix, T) CMP(ge, u >= v, suffix, T)
CANDLE_FOR_ALL_DTYPES(CMP_OPS)
// ANCHOR_END: cmp

// ANCHOR: where_cond
// Kernel `where_<dtype>(long long n, Strided c, const unsigned char* cond,
//                       Strided t, const T* on_true, Strided f,
//                       const T* on_false, T* out)`: `cond ? on_true : on_false`.
#define WHERE(suffix, T)                                                                      \
    extern "C" __global__ void where_##suffix(long long n, Strided c, const unsigned char* cond, \
                                              Strided t, const Elem<T>::Storage* on_true,     \
                                              Strided f, const Elem<T>::Storage* on_false,    \
                                              Elem<T>::Storage* out) {                        \
        CANDLE_GRID_STRIDE(i, n) {                                                            \
            out[i] = cond[strided_offset(c, i)] ? on_true[strided_offset(t, i)]               \
                                                : on_false[strided_offset(f, i)];             \
        }                                                                                     \
    }                                                                                         \
    CANDLE_KERNEL(where_##suffix)
CANDLE_FOR_ALL_DTYPES(WHERE)
// ANCHOR_END: where_cond

// ANCHOR: copy
// Kernel `copy_<dtype>(long long n, Strided src, const T* x, T* y)`: a
// view made contiguous, bits moved unchanged (the backend's `copy`).
#define COPY(suffix, T)                                                                       \
    extern "C" __global__ void copy_##suffix(long long n, Strided src,                        \
                                             const Elem<T>::Storage* x, Elem<T>::Storage* y) { \
        CANDLE_GRID_STRIDE(i, n) { y[i] = x[strided_offset(src, i)]; }                        \
    }                                                                                         \
    CANDLE_KERNEL(copy_##suffix)
CANDLE_FOR_ALL_DTYPES(COPY)

// Kernel `copy_into_<dtype>(long long n, Strided dst, T* d, Strided src,
//                           const T* s)`: `d[dst(i)] = s[src(i)]`, the
// primitive behind `cat`, `pad` and slice assignment.
#define COPY_INTO(suffix, T)                                                                  \
    extern "C" __global__ void copy_into_##suffix(long long n, Strided dst, Elem<T>::Storage* d, \
                                                  Strided src, const Elem<T>::Storage* s) {   \
        CANDLE_GRID_STRIDE(i, n) { d[strided_offset(dst, i)] = s[strided_offset(src, i)]; }   \
    }                                                                                         \
    CANDLE_KERNEL(copy_into_##suffix)
CANDLE_FOR_ALL_DTYPES(COPY_INTO)
// ANCHOR_END: copy

// ANCHOR: cast
// A value travels from one dtype to another the way the CPU backend's
// `Scalar` does: an integer as an i64, a float as an (exact) f64, and is
// rounded once, by the destination's conversion with Rust's `as` rules.
template <typename S, typename D>
struct Convert {
    __device__ static typename Elem<D>::Storage f(typename Elem<S>::Storage v) {
        if (Elem<S>::is_int) return Elem<D>::from_i64((long long)Elem<S>::load(v));
        return Elem<D>::from_f64(Elem<S>::to_f64(v));
    }
};

// Kernel `cast_<src>_<dst>(long long n, Strided src, const S* x, D* y)`,
// for every pair of distinct dtypes (a cast to the same dtype is `copy`).
#define CAST(sa, Sa, sb, Sb)                                                                   \
    extern "C" __global__ void cast_##sa##_##sb(long long n, Strided src,                      \
                                                const Elem<Sa>::Storage* x, Elem<Sb>::Storage* y) { \
        CANDLE_GRID_STRIDE(i, n) { y[i] = Convert<Sa, Sb>::f(x[strided_offset(src, i)]); }     \
    }                                                                                          \
    CANDLE_KERNEL(cast_##sa##_##sb)
#define CAST_FROM_F32(sb, Sb) CAST(f32, float, sb, Sb)
#define CAST_FROM_F64(sb, Sb) CAST(f64, double, sb, Sb)
#define CAST_FROM_F16(sb, Sb) CAST(f16, f16_t, sb, Sb)
#define CAST_FROM_BF16(sb, Sb) CAST(bf16, bf16_t, sb, Sb)
#define CAST_FROM_I64(sb, Sb) CAST(i64, long long, sb, Sb)
#define CAST_FROM_U8(sb, Sb) CAST(u8, unsigned char, sb, Sb)
CAST_FROM_F32(f64, double) CAST_FROM_F32(f16, f16_t) CAST_FROM_F32(bf16, bf16_t)
CAST_FROM_F32(i64, long long) CAST_FROM_F32(u8, unsigned char)
CAST_FROM_F64(f32, float) CAST_FROM_F64(f16, f16_t) CAST_FROM_F64(bf16, bf16_t)
CAST_FROM_F64(i64, long long) CAST_FROM_F64(u8, unsigned char)
CAST_FROM_F16(f32, float) CAST_FROM_F16(f64, double) CAST_FROM_F16(bf16, bf16_t)
CAST_FROM_F16(i64, long long) CAST_FROM_F16(u8, unsigned char)
CAST_FROM_BF16(f32, float) CAST_FROM_BF16(f64, double) CAST_FROM_BF16(f16, f16_t)
CAST_FROM_BF16(i64, long long) CAST_FROM_BF16(u8, unsigned char)
CAST_FROM_I64(f32, float) CAST_FROM_I64(f64, double) CAST_FROM_I64(f16, f16_t)
CAST_FROM_I64(bf16, bf16_t) CAST_FROM_I64(u8, unsigned char)
CAST_FROM_U8(f32, float) CAST_FROM_U8(f64, double) CAST_FROM_U8(f16, f16_t)
CAST_FROM_U8(bf16, bf16_t) CAST_FROM_U8(i64, long long)
// ANCHOR_END: cast

// ANCHOR: fill
// Kernel `fill_<dtype>(long long n, T* out, double value)`.
#define FILL(suffix, T)                                                                       \
    extern "C" __global__ void fill_##suffix(long long n, Elem<T>::Storage* out, double value) { \
        Elem<T>::Storage v = Elem<T>::from_f64(value);                                        \
        CANDLE_GRID_STRIDE(i, n) { out[i] = v; }                                              \
    }                                                                                         \
    CANDLE_KERNEL(fill_##suffix)
CANDLE_FOR_ALL_DTYPES(FILL)

// Kernel `arange_<dtype>(long long n, T* out, double start, double step)`:
// `out[i] = start + i·step`, computed in f64 and rounded once.
#define ARANGE(suffix, T)                                                                     \
    extern "C" __global__ void arange_##suffix(long long n, Elem<T>::Storage* out, double start, \
                                               double step) {                                 \
        CANDLE_GRID_STRIDE(i, n) { out[i] = Elem<T>::from_f64(__dadd_rn(start, __dmul_rn((double)i, step))); }    \
    }                                                                                         \
    CANDLE_KERNEL(arange_##suffix)
CANDLE_FOR_ALL_DTYPES(ARANGE)
// ANCHOR_END: fill
