//! Fused CPU kernels for exact GELU, forward and backward.
//!
//! Written with tensor primitives, `gelu(x) = x·½(1 + erf(x/√2))` is four
//! passes over memory (scale, `erf`, affine, multiply) and its derivative
//! `Φ(x) + x·φ(x)` about ten, each with a full-size intermediate. Worse,
//! `erf` and `exp` are C library calls, one element at a time: in the
//! Shakespeare GPT they were a sixth of a training step. These kernels read
//! `x` (and `g`) once and write the result once, eight lanes at a time, with
//! an `erf` and an `exp` made of multiply-adds that the compiler turns into
//! vector instructions ([`erf_f32`], [`exp_f32`](crate::row_kernels::exp_f32)).
//!
//! `f64` keeps the C library's `erf` and `exp`, whose accuracy the `f64`
//! gradient checks rely on; half types are widened to `f32`.

use crate::row_kernels::{cores, exp_f32, in_compute_dtype, run_chunk, RowChunk, RowFloat, LANES};
use chapter_02::{buffer_for_overwrite, DType, Error, Result, Tensor};
use rayon::prelude::*;
use std::array::from_fn;
use std::f64::consts::{FRAC_1_SQRT_2, PI};
use std::ops::Range;

/// Below this many elements one core runs the kernel (a second thread
/// costs tens of microseconds to wake and join).
const PARALLEL_MIN: usize = 1 << 15;

// ANCHOR: erf_f32
/// `erf(x)` in `f32` without a library call, so that a loop over lanes
/// vectorises. Two approximations, both computed and one selected (a
/// select vectorises, a branch would not):
///
/// - for `|x| < 0.9`, `erf(x) = x·P(x²)` with `P` of degree 5, computed
///   as `x + x·(P(x²) − 1)` so that the leading term is exact;
/// - beyond, `erf(|x|) = 1 − e^(−x²)·R(u)` with `u = 1/(1 + |x|)` and `R`
///   of degree 7: `e^(x²)·erfc(x)` is smooth and slowly varying, so a
///   polynomial in `u` follows it closely all the way to infinity.
///
/// The coefficients were fitted here (weighted least squares on Chebyshev
/// nodes, reweighted towards the minimax solution, in `f64`): relative
/// error 1.2·10⁻⁸ for `P` and 1.4·10⁻⁸ for `R`, far below an `f32` ulp, so
/// what is left is the rounding of the evaluation (the test
/// `gelu_kernels_erf_f32_is_within_two_ulp` sweeps the range). Odd in `x`;
/// `±∞` give `±1`, NaN gives NaN.
#[inline(always)]
pub fn erf_f32<const FMA: bool>(x: f32) -> f32 {
    let mul_add = |a: f32, b: f32, c: f32| if FMA { a.mul_add(b, c) } else { a * b + c };
    let a = x.abs();
    // Near 0: x·P(x²).
    let z = x * x;
    let mut p: f32 = -6.090_653_5e-4;
    p = mul_add(p, z, 5.012_028_6e-3);
    p = mul_add(p, z, -2.677_896_3e-2);
    p = mul_add(p, z, 1.128_214_3e-1);
    p = mul_add(p, z, -3.761_252_4e-1);
    // c₀ = 1.1283791539 as 1 + 0.1283791539: `x + x·(0.128… + z·p)`, where
    // only the last addition rounds at the scale of the result.
    let small = mul_add(x, mul_add(z, p, 1.283_791_5e-1), x);
    // Away from 0: 1 − e^(−x²)·R(1/(1 + |x|)). Past |x| = 10 the exp is 0
    // and erf is 1 to f32 precision; the clamp keeps ∞ from becoming NaN.
    let c = if a < 10.0 { a } else { 10.0 };
    let u = 1.0 / (1.0 + c);
    let mut r: f32 = -5.520_869_5e-1;
    r = mul_add(r, u, 1.183_929);
    r = mul_add(r, u, -5.006_352_4e-1);
    r = mul_add(r, u, -6.931_904_7e-1);
    r = mul_add(r, u, 4.473_291_3e-1);
    r = mul_add(r, u, 5.312_047e-1);
    r = mul_add(r, u, 5.675_885_7e-1);
    r = mul_add(r, u, -1.444_761_1e-4);
    let large = 1.0 - exp_f32::<FMA>(-(c * c)) * r;
    // erf has the sign of x (−0 included), which `copysign` sets bitwise.
    let y = if a < 0.9 { small } else { large };
    if x.is_nan() {
        x
    } else {
        y.copysign(x)
    }
}
// ANCHOR_END: erf_f32

/// The element types of the GELU kernels, with the `erf` they use: the
/// vectorisable one for `f32`, the C library's for `f64` (`exp` is
/// [`RowFloat::exp_fast`]).
pub trait GeluFloat: RowFloat {
    fn erf_fast<const FMA: bool>(self) -> Self;
}

impl GeluFloat for f32 {
    #[inline(always)]
    fn erf_fast<const FMA: bool>(self) -> f32 {
        erf_f32::<FMA>(self)
    }
}

impl GeluFloat for f64 {
    #[inline(always)]
    fn erf_fast<const FMA: bool>(self) -> f64 {
        libm::erf(self)
    }
}

// ANCHOR: gelu_one
/// `x·Φ(x)`, `Φ(x) = ½ + ½·erf(x/√2)`, in the order the composite
/// computes it.
#[inline(always)]
fn gelu_one<T: GeluFloat, const FMA: bool>(x: T) -> T {
    let half = T::from_f64(0.5);
    let e = (x * T::from_f64(FRAC_1_SQRT_2)).erf_fast::<FMA>();
    x * (e * half + half)
}

/// `g·(Φ(x) + x·φ(x))`, `φ(x) = e^(−x²/2)/√(2π)`.
#[inline(always)]
fn gelu_grad_one<T: GeluFloat, const FMA: bool>(x: T, g: T) -> T {
    let half = T::from_f64(0.5);
    let e = (x * T::from_f64(FRAC_1_SQRT_2)).erf_fast::<FMA>();
    let d = (x * x * T::from_f64(-0.5)).exp_fast::<FMA>();
    let inv_sqrt_2pi = T::from_f64(1.0 / (2.0 * PI).sqrt());
    g * ((e * half + half) + x * (d * inv_sqrt_2pi))
}
// ANCHOR_END: gelu_one

/// One pass over `K` inputs of one length: the GELU forward (`K = 1`) or
/// backward (`K = 2`) on elements `range`. A plain loop over elements whose
/// body is inlined, branch-free arithmetic: the compiler's loop vectoriser
/// turns it into 8-wide (AVX2) code.
struct Pass<'a, T, const K: usize> {
    inputs: [&'a [T]; K],
}

impl<T: GeluFloat, const K: usize> RowChunk<T> for Pass<'_, T, K> {
    type Output = ();
    #[inline(always)]
    fn run<const FMA: bool>(&self, range: Range<usize>, out: &mut [T]) {
        let x = &self.inputs[0][range.clone()];
        if K == 1 {
            for (y, &x) in out.iter_mut().zip(x) {
                *y = gelu_one::<T, FMA>(x);
            }
        } else {
            let g = &self.inputs[K - 1][range];
            for ((y, &x), &g) in out.iter_mut().zip(x).zip(g) {
                *y = gelu_grad_one::<T, FMA>(x, g);
            }
        }
    }
}

/// Runs the pass over contiguous inputs, split over the cores when large.
fn map_elements<T: GeluFloat, const K: usize>(inputs: [&Tensor; K]) -> Result<Tensor> {
    let x = inputs[0];
    let mut data: [&[T]; K] = [&[]; K];
    for (d, t) in data.iter_mut().zip(inputs) {
        *d = t.host_slice::<T>()?;
    }
    let n = x.elem_count();
    // Every element is written below.
    let mut out = buffer_for_overwrite(n, T::ZERO);
    let pass = Pass { inputs: data };
    if n < PARALLEL_MIN || cores() == 1 {
        run_chunk(&pass, 0..n, &mut out);
    } else {
        // Whole blocks of lanes per chunk, so only the last one is ragged.
        let per = n.div_ceil(cores()).next_multiple_of(LANES);
        out.par_chunks_mut(per).enumerate().for_each(|(c, chunk)| {
            let start = c * per;
            run_chunk(&pass, start..start + chunk.len(), chunk);
        });
    }
    Tensor::from_host_vec(out, x.shape().clone(), x.device())
}

/// Makes the inputs contiguous, widens half types and picks `f32`/`f64`.
fn elementwise_kernel<const K: usize>(
    name: &'static str,
    inputs: &[&Tensor],
) -> Result<Vec<Tensor>> {
    let contiguous = inputs
        .iter()
        .map(|t| t.contiguous())
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&Tensor> = contiguous.iter().collect();
    in_compute_dtype(&refs, |inputs| {
        let arr: [&Tensor; K] = from_fn(|k| inputs[k]);
        Ok(vec![match arr[0].dtype() {
            DType::F32 => map_elements::<f32, K>(arr)?,
            DType::F64 => map_elements::<f64, K>(arr)?,
            dtype => return Err(Error::UnsupportedDType { op: name, dtype }),
        }])
    })
}

/// The CPU kernel of [`GeluForward`](crate::elementwise::GeluForward).
pub fn gelu_cpu(_: &crate::elementwise::GeluForward, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    elementwise_kernel::<1>("gelu", inputs)
}

/// The CPU kernel of [`GeluBackward`](crate::elementwise::GeluBackward).
pub fn gelu_backward_cpu(
    _: &crate::elementwise::GeluBackward,
    inputs: &[&Tensor],
) -> Result<Vec<Tensor>> {
    elementwise_kernel::<2>("gelu_backward", inputs)
}
