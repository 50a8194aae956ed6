//! Tools for fused CPU kernels that work row by row: softmax here, layer
//! norm in chapter 05.
//!
//! A row kernel reads a `[rows, n]` tensor one contiguous row at a time.
//! Three things make it fast, and each is a small piece of this module:
//!
//! - **lanes.** The inner loops work on [`LANES`] = 8 independent values at
//!   a time (eight running maxima, eight partial sums), written as loops
//!   over `[T; 8]` arrays. The compiler turns each such loop into one
//!   vector instruction; a single running sum could not be vectorised,
//!   because every addition would wait for the previous one.
//! - **a vectorisable `exp`.** `f32::exp` calls the C library, one element
//!   at a time. [`RowFloat::exp_lanes`] for `f32` is a polynomial made of
//!   multiply-adds and bit operations, which vectorise (within 2 ulp of the
//!   exact value); `f64` keeps the library's `exp`, whose accuracy the
//!   `f64` gradient checks and fixtures rely on.
//! - **AVX2, chosen at run time.** A library is compiled for the baseline
//!   x86-64 CPU (SSE2: 4 floats per vector, no fused multiply-add). Kernels
//!   compile their loops a second time for AVX2 and FMA (8 floats, one
//!   instruction per multiply-add) and run that copy when the CPU has them
//!   ([`RowChunk`], [`run_chunk`]).
//!
//! Large tensors are also split by rows over the available cores
//! ([`for_row_chunks`]); small ones are not, because handing work to
//! another thread costs microseconds, more than a whole MNIST batch's
//! softmax.

use chapter_02::{DType, Result, Tensor};
use rayon::prelude::*;
use std::ops::{Add, Mul, Range, Sub};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Values processed side by side in the inner loops: one AVX2 register of
/// `f32`.
pub const LANES: usize = 8;

/// Below this much work a kernel runs on one thread. The work of a
/// `[rows, n]` tensor is counted as `rows · (n + ROW_COST)` elements: each
/// row also costs about as much as 64 more elements (the horizontal steps
/// of its reductions, a division, the loop's setup), which matters for
/// short rows.
///
/// Measured on the 2-core development machine while it was shared with
/// other work: handing half the rows to a second thread and waiting for it
/// cost 20 to 50 µs (`cargo bench -p chapter-04 -- threads` measures it,
/// and the kernel's time per element on one thread). Splitting the softmax
/// paid off from about 2¹⁸ elements in rows of 1000 (0.8 ns per element),
/// but already from 2¹⁶ in rows of 10 (7 ns per element).
pub const PARALLEL_MIN_WORK: usize = 1 << 18;

/// What one row costs beyond its elements, in elements (see
/// [`PARALLEL_MIN_WORK`]).
pub const ROW_COST: usize = 64;

// ANCHOR: row_float
/// The element types row kernels compute in: `f32` and `f64` (half types
/// are widened to `f32` first, see [`in_compute_dtype`]).
pub trait RowFloat:
    Copy
    + Send
    + Sync
    + PartialOrd
    + Default
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + chapter_02::WithDType
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    /// The most negative finite value: the starting point of a running
    /// maximum. (Starting at `−∞` would make `exp(m − m_new)` a NaN while a
    /// lane has seen only `−∞`, the masked entries of attention.)
    const LOWEST: Self;
    const NEG_INFINITY: Self;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn recip(self) -> Self;
    /// `exp` of each lane, written so that it vectorises; with `FMA`,
    /// using fused multiply-adds (for code compiled with FMA).
    fn exp_lanes<const FMA: bool>(x: [Self; LANES]) -> [Self; LANES];
    /// `exp` of one value, written so that a loop calling it vectorises
    /// (for `f32`, [`exp_f32`]; `f64` keeps the library's `exp`).
    fn exp_fast<const FMA: bool>(self) -> Self;
    /// The larger of two values; a NaN in `self` is ignored (its effect on
    /// the kernels' sums is what makes their results NaN).
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        if self > other {
            self
        } else {
            other
        }
    }
}
// ANCHOR_END: row_float

impl RowFloat for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    const LOWEST: f32 = f32::MIN;
    const NEG_INFINITY: f32 = f32::NEG_INFINITY;
    #[inline(always)]
    fn exp(self) -> f32 {
        f32::exp(self)
    }
    #[inline(always)]
    fn exp_fast<const FMA: bool>(self) -> f32 {
        exp_f32::<FMA>(self)
    }
    #[inline(always)]
    fn ln(self) -> f32 {
        f32::ln(self)
    }
    #[inline(always)]
    fn sqrt(self) -> f32 {
        f32::sqrt(self)
    }
    #[inline(always)]
    fn recip(self) -> f32 {
        1.0 / self
    }
    #[inline(always)]
    fn exp_lanes<const FMA: bool>(x: [f32; LANES]) -> [f32; LANES] {
        std::array::from_fn(|l| exp_f32::<FMA>(x[l]))
    }
}

impl RowFloat for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    const LOWEST: f64 = f64::MIN;
    const NEG_INFINITY: f64 = f64::NEG_INFINITY;
    #[inline(always)]
    fn exp(self) -> f64 {
        f64::exp(self)
    }
    #[inline(always)]
    fn exp_fast<const FMA: bool>(self) -> f64 {
        f64::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> f64 {
        f64::ln(self)
    }
    #[inline(always)]
    fn sqrt(self) -> f64 {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn recip(self) -> f64 {
        1.0 / self
    }
    #[inline(always)]
    fn exp_lanes<const FMA: bool>(x: [f64; LANES]) -> [f64; LANES] {
        std::array::from_fn(|l| x[l].exp())
    }
}

// ANCHOR: exp_f32
/// `eˣ` in `f32` without a library call, so that a loop over lanes becomes
/// vector instructions (Cephes' `expf`, as SLEEF and PyTorch's vectorised
/// `exp` also do it):
///
/// 1. split `x = n·ln 2 + r` with `n` an integer and `|r| ≤ ln 2 / 2`
///    (`ln 2` in two parts, so that `n·ln 2` is exact to 32 bits);
/// 2. `eʳ ≈ 1 + r + r²·p(r)` with a degree-5 polynomial `p`;
/// 3. `eˣ = eʳ · 2ⁿ`, with `2ⁿ` built from its exponent bits, in two
///    factors so that results down to the smallest subnormal are right.
///
/// Every step is a select, a multiply-add or a bit operation. With `FMA`
/// the multiply-adds are fused (one instruction, rounded once: for code
/// compiled with FMA, where it is twice as fast); without, they are a
/// multiplication and an addition (a fused one would be a slow library
/// call there). Within 2 ulp of the exact value either way (the test
/// `softmax_row_kernels_exp_f32_is_within_two_ulp` sweeps the range);
/// `−∞` gives 0, `+∞` and `x > 88.73` give `+∞`, NaN gives NaN.
#[inline(always)]
pub fn exp_f32<const FMA: bool>(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4; // 0.693359375: 11 significant bits
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2²³ rounds to an integer, stored in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let mul_add = |a: f32, b: f32, c: f32| if FMA { a.mul_add(b, c) } else { a * b + c };
    // Comparisons are false for NaN, so these clamps keep it.
    let x = if x < -104.0 { -104.0 } else { x };
    let x = if x > 89.0 { 89.0 } else { x };
    let t = mul_add(x, std::f32::consts::LOG2_E, ROUND);
    let n = t - ROUND;
    let r = mul_add(n, -LN2_LO, mul_add(n, -LN2_HI, x));
    let mut p: f32 = 1.987_569_1e-4;
    p = mul_add(p, r, 1.398_199_9e-3);
    p = mul_add(p, r, 8.333_452e-3);
    p = mul_add(p, r, 4.166_579_6e-2);
    p = mul_add(p, r, 0.166_666_65);
    p = mul_add(p, r, 0.5);
    let er = mul_add(p, r * r, r + 1.0);
    // n as an integer in [−150, 129], split in two halves that are each a
    // normal power of two.
    let ni = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let n1 = ni >> 1;
    let n2 = ni.wrapping_sub(n1);
    let pow2 = |k: i32| f32::from_bits((k.wrapping_add(127) as u32) << 23);
    er * pow2(n1) * pow2(n2)
}
// ANCHOR_END: exp_f32

// ANCHOR: vectorized
/// The work of a kernel on a chunk of rows, written once and compiled
/// twice: for the baseline CPU and for AVX2 with FMA ([`run_chunk`] picks
/// the copy). `run` must be `#[inline(always)]`, and so must everything it
/// calls in its inner loops: only code inlined into the AVX2 copy is
/// compiled for AVX2 (a closure or a function pointer would be called,
/// compiled for the baseline).
pub trait RowChunk<T>: Sync {
    type Output: Send;
    /// Computes rows `rows` into `out`, their part of the output. `FMA`
    /// says whether this copy is compiled with fused multiply-adds (see
    /// [`exp_f32`]).
    fn run<const FMA: bool>(&self, rows: Range<usize>, out: &mut [T]) -> Self::Output;
}

/// Runs `kernel` on a chunk of rows: its AVX2 + FMA copy where the CPU
/// has those, the baseline copy elsewhere.
pub fn run_chunk<T, C: RowChunk<T>>(kernel: &C, rows: Range<usize>, out: &mut [T]) -> C::Output {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        #[target_feature(enable = "avx2,fma")]
        fn avx2_fma<T, C: RowChunk<T>>(k: &C, rows: Range<usize>, out: &mut [T]) -> C::Output {
            k.run::<true>(rows, out)
        }
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { avx2_fma(kernel, rows, out) };
    }
    kernel.run::<false>(rows, out)
}

/// Whether this CPU has AVX2 (8 `f32` per vector instead of SSE2's 4) and
/// FMA (a multiply and an add in one instruction, rounded once): a cached
/// flag, a few nanoseconds. [`set_simd_enabled`]`(false)` makes it answer
/// `false`, so that tests can run the baseline copy on a machine that has
/// AVX2.
#[inline(always)]
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        SIMD_ENABLED.load(Ordering::Relaxed)
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

static SIMD_ENABLED: AtomicBool = AtomicBool::new(true);

/// Lets kernels use AVX2 and FMA where the CPU has them (`true`, the
/// default) or keeps them to the baseline instruction set (`false`), for
/// every thread of the process. Both copies run the same operations in the
/// same order; they differ only where the FMA copy fuses a multiply-add
/// (in [`exp_f32`]), by an ulp or two.
pub fn set_simd_enabled(enabled: bool) {
    SIMD_ENABLED.store(enabled, Ordering::Relaxed);
}
// ANCHOR_END: vectorized

/// The number of cores this process may use, asked once: the question
/// reads files of the control groups on Linux, which takes tens of
/// microseconds, longer than a small softmax.
pub fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |c| c.get()))
}

// ANCHOR: for_row_chunks
/// Splits the rows of `out` (`[rows, n]`, row-major) into one contiguous
/// chunk per core and runs `f(rows, chunk)` on each, on the worker threads
/// every CPU kernel shares (rayon's pool: started once, parked between
/// jobs); one chunk, on this thread, below [`PARALLEL_MIN_WORK`]. Returns
/// the results of the chunks in row order.
pub fn for_row_chunks<T, R>(
    out: &mut [T],
    n: usize,
    f: impl Fn(Range<usize>, &mut [T]) -> R + Sync,
) -> Vec<R>
where
    T: Send,
    R: Send,
{
    let rows = out.len().checked_div(n).unwrap_or(0);
    let chunks = if rows * (n + ROW_COST) < PARALLEL_MIN_WORK {
        1
    } else {
        cores().min(rows).max(1)
    };
    if chunks == 1 {
        return vec![f(0..rows, out)];
    }
    let per = rows.div_ceil(chunks);
    out.par_chunks_mut(per * n)
        .enumerate()
        .map(|(i, chunk)| {
            let start = i * per;
            f(start..start + chunk.len() / n, chunk)
        })
        .collect()
}
// ANCHOR_END: for_row_chunks

// ANCHOR: in_compute_dtype
/// Runs an `f32`/`f64` kernel on inputs of any float dtype: half inputs
/// (`f16`, `bf16`) are widened to `f32`, computed on, and every output is
/// rounded back once, as chapter 02's primitives do.
pub fn in_compute_dtype(
    inputs: &[&Tensor],
    kernel: impl FnOnce(&[&Tensor]) -> Result<Vec<Tensor>>,
) -> Result<Vec<Tensor>> {
    let Some(half) = inputs.iter().map(|t| t.dtype()).find(|d| d.is_half()) else {
        return kernel(inputs);
    };
    let wide = inputs
        .iter()
        .map(|t| t.to_dtype(DType::F32))
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&Tensor> = wide.iter().collect();
    kernel(&refs)?.iter().map(|t| t.to_dtype(half)).collect()
}
// ANCHOR_END: in_compute_dtype

/// `Σⱼ f(xⱼ)` over a row, in `LANES` partial sums (so that it vectorises),
/// added pairwise at the end.
#[inline(always)]
pub fn sum_by<T: RowFloat>(x: &[T], f: impl Fn(T) -> T) -> T {
    let mut acc = [T::ZERO; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            acc[l] = acc[l] + f(c[l]);
        }
    }
    for (l, &v) in chunks.remainder().iter().enumerate() {
        acc[l] = acc[l] + f(v);
    }
    sum_lanes(acc)
}

/// `Σⱼ f(aⱼ, bⱼ)` over two rows of one length, like [`sum_by`].
#[inline(always)]
pub fn sum_by2<T: RowFloat>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> T {
    let mut acc = [T::ZERO; LANES];
    let (mut ac, mut bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    for (x, y) in (&mut ac).zip(&mut bc) {
        for l in 0..LANES {
            acc[l] = acc[l] + f(x[l], y[l]);
        }
    }
    for (l, (&x, &y)) in ac.remainder().iter().zip(bc.remainder()).enumerate() {
        acc[l] = acc[l] + f(x, y);
    }
    sum_lanes(acc)
}

/// `Σⱼ f(aⱼ, bⱼ, cⱼ)` over three rows of one length, like [`sum_by`].
#[inline(always)]
pub fn sum_by3<T: RowFloat>(a: &[T], b: &[T], c: &[T], f: impl Fn(T, T, T) -> T) -> T {
    let mut acc = [T::ZERO; LANES];
    let (mut ac, mut bc, mut cc) = (
        a.chunks_exact(LANES),
        b.chunks_exact(LANES),
        c.chunks_exact(LANES),
    );
    for ((x, y), z) in (&mut ac).zip(&mut bc).zip(&mut cc) {
        for l in 0..LANES {
            acc[l] = acc[l] + f(x[l], y[l], z[l]);
        }
    }
    let tails = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .zip(cc.remainder());
    for (l, ((&x, &y), &z)) in tails.enumerate() {
        acc[l] = acc[l] + f(x, y, z);
    }
    sum_lanes(acc)
}

/// Sum of the lanes, pairwise.
#[inline(always)]
pub fn sum_lanes<T: RowFloat>(v: [T; LANES]) -> T {
    ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]))
}

/// The first `LANES` elements of `s` as an array (`s` has at least that
/// many).
#[inline(always)]
pub fn lanes<T: RowFloat>(s: &[T]) -> [T; LANES] {
    let mut a = [T::ZERO; LANES];
    a.copy_from_slice(&s[..LANES]);
    a
}

/// The elements of `s` (fewer than `LANES`), then `fill`.
#[inline(always)]
pub fn padded<T: RowFloat>(s: &[T], fill: T) -> [T; LANES] {
    let mut a = [fill; LANES];
    a[..s.len()].copy_from_slice(s);
    a
}
