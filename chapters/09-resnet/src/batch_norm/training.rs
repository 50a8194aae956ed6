//! Batch normalisation in training mode as one operation, with a CPU kernel
//! for each direction.
//!
//! Chapter 05's batch norm is a composite: the mean, the centred values,
//! their squares, the variance, the normalised values, the scale and the
//! shift are each a pass over the activations, and the running statistics
//! take five more; the backward pass is about as many again. That is the
//! right way to *write* it (every step is an operation with its own tested
//! gradient), but each pass reads and writes a tensor as large as a
//! convolution's output, and in a ResNet those passes cost as much as the
//! convolutions themselves.
//!
//! Per channel `c`, over the `M = N·H·W` values of the batch, the whole
//! forward pass is
//!
//! ```text
//! μ = Σx / M,   σ² = Σ(x − μ)² / M,   r = 1/√(σ² + ε)
//! y = γ·r·(x − μ) + β  =  a·x + b     (a = γ·r,  b = β − a·μ)
//! ```
//!
//! one reading pass for the statistics (each plane centred on its own mean
//! while it is in cache) and one writing pass for `y`.
//! With `x̂ = r·(x − μ)` and the incoming gradient `g`, the backward pass
//! (the derivation is on the chapter's page) is
//!
//! ```text
//! ∂L/∂β = Σg,   ∂L/∂γ = Σ g·x̂
//! ∂L/∂x = γ·r·(g − Σg/M − x̂·Σ(g·x̂)/M)
//! ```
//!
//! one reading pass for the two sums and one writing pass for `∂L/∂x`.
//!
//! In a ResNet almost every batch norm is followed by a ReLU, another pass
//! that reads and writes the whole tensor, and another in the backward
//! pass. With `relu` set, the forward pass writes `max(y, 0)` in its own
//! writing pass, and the backward pass masks `g` with that output (ReLU's
//! gradient, chapter 04's `ReluBackward`) before its own two passes: what
//! is saved is the pass that wrote `y` and the one that read it again, and
//! one tensor fewer kept for the backward pass.
//!
//! The second batch norm of a residual block is followed by the shortcut's
//! addition and then the ReLU, `relu(bn(x) + s)`: three writing passes and
//! four reading ones in turn. With a `shortcut`, the writing pass reads `s`
//! beside `x` and writes `max(a·x + b + s, 0)` once; in the backward pass
//! the shortcut's gradient is the masked `g` itself, which the batch norm
//! needs anyway.
//!
//! The operators below are those passes ([`BatchNormForward`],
//! [`BatchNormBackward`]); their composites are the same formulas in
//! tensor operations, for every other device. [`batch_norm_train`] joins
//! them into a differentiable operation; differentiating its backward
//! pass again (`create_graph`) uses the formula written with
//! differentiable operations instead of the kernel.

use crate::conv::prefetch::prefetch_lines;
use chapter_02::dispatch::call;
use chapter_02::{
    CmpOp, DType, DeviceKind, Error, Kernel, Operator, Result, Tensor as RawTensor, UnaryOp,
    WithDType,
};
use chapter_03::{is_grad_enabled, BackwardCtx, CustomOp, Tensor};
use chapter_04::elementwise::ReluBackward;
use chapter_04::row_kernels::in_compute_dtype;
use rayon::prelude::*;
use std::sync::{Arc, Mutex, PoisonError};

/// The element types of the kernels.
trait BnFloat:
    WithDType
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
{
}
impl BnFloat for f32 {}
impl BnFloat for f64 {}

/// `[N, C, H, W]` seen as `N·C` planes of `L = H·W` values.
#[derive(Clone, Copy)]
struct Planes {
    n: usize,
    c: usize,
    l: usize,
}

impl Planes {
    fn of(x: &RawTensor, op: &'static str) -> Result<Planes> {
        match x.dims()[..] {
            [n, c, h, w] if n * h * w > 1 => Ok(Planes { n, c, l: h * w }),
            _ => Err(Error::invalid(
                op,
                format!(
                    "expected an input [N, C, H, W] with more than 1 value per channel, got shape {}",
                    x.shape()
                ),
            )),
        }
    }
    /// `M`, the values per channel.
    fn m(&self) -> f64 {
        (self.n * self.l) as f64
    }
    /// The values of channel `ch`, plane by plane. Each plane is
    /// `C·L` values after the one before, too far for the hardware
    /// prefetcher to follow; so the next plane is asked for (see chapter
    /// 09's `conv::prefetch`) as each one is handed out.
    fn channel<'a, T>(&self, x: &'a [T], ch: usize) -> impl Iterator<Item = &'a [T]> + 'a {
        let (c, l) = (self.c, self.l);
        (0..self.n).map(move |i| {
            prefetch_lines(x.as_ptr().wrapping_add(((i + 1) * c + ch) * l), l);
            &x[(i * c + ch) * l..][..l]
        })
    }
}

/// `[C]` → `[1, C, 1, 1]`, to broadcast against `[N, C, H, W]`.
fn per_channel<T: Reshape>(t: &T, c: usize) -> Result<T> {
    t.reshape_to(&[1, c, 1, 1])
}

/// The one reshape both tensor types need here.
trait Reshape: Sized {
    fn reshape_to(&self, dims: &[usize]) -> Result<Self>;
}
impl Reshape for RawTensor {
    fn reshape_to(&self, dims: &[usize]) -> Result<Self> {
        self.reshape(dims.to_vec())
    }
}
impl Reshape for Tensor {
    fn reshape_to(&self, dims: &[usize]) -> Result<Self> {
        self.reshape(dims.to_vec())
    }
}

// ANCHOR: forward_kernel
/// Running sums a plane is reduced into: 32 of `T`, which the compiler
/// keeps in four vector registers. One register would make each addition
/// wait for the one before it (the latency of an addition is several
/// cycles, its throughput two a cycle); four independent chains keep the
/// adder busy.
const LANES: usize = 32;

/// `Σ f(x)` over a plane, in [`LANES`] running sums of `T` added up in
/// `f64` at the end.
#[inline(always)]
fn plane_sum<T: BnFloat>(xs: &[T], f: impl Fn(T) -> T) -> f64 {
    plane_sum2(xs, xs, |x, _| f(x))
}

/// `Σ f(a, b)` over two planes of the same length, likewise. (Both sums of
/// the backward pass in one loop were tried: the compiler no longer
/// vectorised it.)
#[inline(always)]
fn plane_sum2<T: BnFloat>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> f64 {
    let mut acc = [T::default(); LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f64 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(&x, &y)| f(x, y).to_f64())
        .sum();
    for (x, y) in ac.zip(bc) {
        for k in 0..LANES {
            acc[k] = acc[k] + f(x[k], y[k]);
        }
    }
    acc.iter().map(|a| a.to_f64()).sum::<f64>() + tail
}

/// Per channel: `(μ, σ²)` over its `M` values, reading memory once.
///
/// The textbook one-pass formula `E[x²] − E[x]²` cancels catastrophically
/// when the mean is large next to the spread, so each plane (one image's
/// `H·W` values of the channel, a few KiB) gets the two-pass treatment
/// instead — its mean, then the sum of squares *centred on that mean* —
/// while it is still in the core's first-level cache. The planes'
/// `(count, mean, M₂)` are then merged in `f64` with Chan et al.'s
/// formula, `M₂ = Σₚ M₂,ₚ + Σₚ nₚ·(μₚ − μ)²`, which is exact algebra and
/// adds only non-negative terms. Channels run on the cores in parallel.
fn channel_stats<T: BnFloat>(p: Planes, x: &[T]) -> Vec<(f64, f64)> {
    let l = p.l as f64;
    (0..p.c)
        .into_par_iter()
        .map(|ch| {
            let mut planes = Vec::with_capacity(p.n);
            for xs in p.channel(x, ch) {
                planes.push(plane_stats(xs, l));
            }
            let mean = planes.iter().map(|&(m, _)| m).sum::<f64>() / p.n as f64;
            let m2: f64 = planes
                .iter()
                .map(|&(m, m2)| m2 + l * (m - mean) * (m - mean))
                .sum();
            (mean, m2 / p.m())
        })
        .collect()
}

/// One plane's `(mean, M₂)`: its mean, then the sum of squares centred on
/// it. This function and the other per-plane loops below are compiled
/// twice (the `multiversion` crate), for the baseline x86-64 and for AVX2,
/// chosen once at run time; they only add and multiply in the order
/// written (Rust does not fuse `a·x + b` into one rounding), so both give
/// the same bits.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn plane_stats<T: BnFloat>(xs: &[T], l: f64) -> (f64, f64) {
    let mean = plane_sum(xs, |v| v) / l;
    let mu = T::from_f64(mean);
    let m2 = plane_sum(xs, |v| (v - mu) * (v - mu));
    // The plane's centre was rounded to T: correct M₂ for it
    // (Σ(x − μ̃)² = M₂ + n·(μ − μ̃)²).
    let off = mean - mu.to_f64();
    (mean, (m2 - l * off * off).max(0.0))
}

/// `y = a·x + b` plane by plane, with each channel's `a = γ·r` and
/// `b = β − a·μ`; with a shortcut `s`, `a·x + b + s`; with `RELU`, the
/// maximum of that and 0, written as chapter 02's ReLU writes it (`v`
/// where `v > 0`, else 0). The additions are made in the order the
/// separate layers make them, so that the fused layer and the layers in
/// turn agree on every bit, NaN included.
fn scale_shift<T: BnFloat, const RELU: bool>(
    p: Planes,
    x: &[T],
    s: Option<&[T]>,
    a: &[T],
    b: &[T],
    y: &mut [T],
) {
    y.par_chunks_mut(p.l).enumerate().for_each(|(i, y)| {
        let (ch, x) = (i % p.c, &x[i * p.l..][..p.l]);
        match s {
            None => scale_shift_plane::<T, RELU>(x, (a[ch], b[ch]), y),
            Some(s) => scale_shift_add_plane::<T, RELU>(x, &s[i * p.l..][..p.l], (a[ch], b[ch]), y),
        }
    });
}

/// `max(v, 0)` as chapter 02's ReLU computes it when `RELU`, else `v`.
#[inline(always)]
fn maybe_relu<T: BnFloat, const RELU: bool>(v: T) -> T {
    match RELU {
        true if v > T::default() => v,
        true => T::default(),
        false => v,
    }
}

#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn scale_shift_plane<T: BnFloat, const RELU: bool>(x: &[T], (a, b): (T, T), y: &mut [T]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = maybe_relu::<T, RELU>(a * x + b);
    }
}

#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn scale_shift_add_plane<T: BnFloat, const RELU: bool>(
    x: &[T],
    s: &[T],
    (a, b): (T, T),
    y: &mut [T],
) {
    for ((y, &x), &s) in y.iter_mut().zip(x).zip(s) {
        *y = maybe_relu::<T, RELU>((a * x + b) + s);
    }
}
// ANCHOR_END: forward_kernel

// ANCHOR: backward_kernel
/// Per channel: `(Σg, Σg·(x − μ))`.
fn grad_sums<T: BnFloat>(p: Planes, g: &[T], x: &[T], mean: &[f64]) -> Vec<(f64, f64)> {
    (0..p.c)
        .into_par_iter()
        .map(|ch| {
            let mu = T::from_f64(mean[ch]);
            let mut sums = (0.0, 0.0);
            for (g, x) in p.channel(g, ch).zip(p.channel(x, ch)) {
                let (sg, sgx) = plane_grad_sums(g, x, mu);
                sums.0 += sg;
                sums.1 += sgx;
            }
            sums
        })
        .collect()
}

/// One plane's `(Σg, Σg·(x − μ))`.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn plane_grad_sums<T: BnFloat>(g: &[T], x: &[T], mu: T) -> (f64, f64) {
    (plane_sum(g, |v| v), plane_sum2(g, x, |g, x| g * (x - mu)))
}

/// `∂L/∂x = γ·r·(g − Σg/M − x̂·Σ(g·x̂)/M)`, rearranged per channel into
/// `α·g + β·x + δ`, one pass over `g` and `x`.
fn input_grad<T: BnFloat>(p: Planes, g: &[T], x: &[T], coef: &[[T; 3]], dx: &mut [T]) {
    dx.par_chunks_mut(p.l).enumerate().for_each(|(i, dx)| {
        let (g, x) = (&g[i * p.l..][..p.l], &x[i * p.l..][..p.l]);
        input_grad_plane(g, x, coef[i % p.c], dx);
    });
}

#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn input_grad_plane<T: BnFloat>(g: &[T], x: &[T], [alpha, beta, delta]: [T; 3], dx: &mut [T]) {
    for ((d, &g), &x) in dx.iter_mut().zip(g).zip(x) {
        *d = alpha * g + beta * x + delta;
    }
}
// ANCHOR_END: backward_kernel

/// The float inputs of a kernel as slices of `T`, all contiguous.
fn slices<'a, T: WithDType>(ts: &'a [&RawTensor]) -> Result<Vec<&'a [T]>> {
    ts.iter().map(|t| t.host_slice::<T>()).collect()
}

/// A `[C]` tensor of `values` in `dtype` on the device of `like`.
fn vector(values: Vec<f64>, dtype: DType, like: &RawTensor) -> Result<RawTensor> {
    let n = values.len();
    RawTensor::from_f64_vec(values, vec![n], dtype, like.device())
}

fn check_float_inputs(op: &'static str, inputs: &[&RawTensor], count: usize) -> Result<()> {
    if inputs.len() != count {
        return Err(Error::invalid(
            op,
            format!("takes {count} tensors, got {}", inputs.len()),
        ));
    }
    let dtype = inputs[0].dtype();
    if !dtype.is_float() {
        return Err(Error::UnsupportedDType { op, dtype });
    }
    for t in &inputs[1..] {
        if t.dtype() != dtype {
            return Err(Error::DTypeMismatch {
                op,
                lhs: dtype,
                rhs: t.dtype(),
            });
        }
    }
    Ok(())
}

/// Checks that `t` is a `[C]` vector.
fn check_vector(op: &'static str, what: &str, t: &RawTensor, c: usize) -> Result<()> {
    if t.dims() != [c] {
        return Err(Error::invalid(
            op,
            format!("expected {what} of shape [{c}], got {}", t.shape()),
        ));
    }
    Ok(())
}

// ANCHOR: operators
/// Inputs `x: [N, C, H, W]`, `γ: [C]`, `β: [C]`, and with `shortcut` a
/// fourth, `s` (like `x`); outputs `y` (like `x`: the normalised values,
/// plus `s` with `shortcut`, then `max(·, 0)` with `relu`) and the batch's
/// per-channel mean and *biased* variance (`[C]` each).
pub struct BatchNormForward {
    pub eps: f64,
    pub relu: bool,
    pub shortcut: bool,
}

/// Inputs `g` (the gradient of `y`), `x`, and `μ`, `σ²`, `γ` (`[C]`);
/// outputs `∂L/∂x`, `∂L/∂γ`, `∂L/∂β`.
pub struct BatchNormBackward {
    pub eps: f64,
}
// ANCHOR_END: operators

impl Operator for BatchNormForward {
    fn name(&self) -> &'static str {
        "batch_norm_forward"
    }
    fn check(&self, inputs: &[&RawTensor]) -> Result<()> {
        check_float_inputs(self.name(), inputs, 3 + self.shortcut as usize)?;
        let p = Planes::of(inputs[0], self.name())?;
        check_vector(self.name(), "the weight", inputs[1], p.c)?;
        check_vector(self.name(), "the bias", inputs[2], p.c)?;
        if self.shortcut && inputs[3].shape() != inputs[0].shape() {
            return Err(Error::ShapeMismatch {
                op: self.name(),
                lhs: inputs[0].shape().clone(),
                rhs: inputs[3].shape().clone(),
                detail: " (the shortcut must have the input's shape)".into(),
            });
        }
        Ok(())
    }
    fn composite(&self, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
        let (x, gamma, beta) = (inputs[0], inputs[1], inputs[2]);
        let c = x.dims()[1];
        let mean = x.mean(vec![0, 2, 3], true)?;
        let centred = x.sub(&mean)?;
        let var = centred.sqr()?.mean(vec![0, 2, 3], true)?;
        let r = var.add_scalar(self.eps)?.powf(-0.5)?;
        let mut y = centred
            .mul(&r.mul(&per_channel(gamma, c)?)?)?
            .add(&per_channel(beta, c)?)?;
        if self.shortcut {
            y = y.add(inputs[3])?;
        }
        if self.relu {
            y = y.unary(UnaryOp::Relu, "relu")?;
        }
        Ok(vec![y, mean.reshape(c)?, var.reshape(c)?])
    }
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        vec![(DeviceKind::CPU, batch_norm_forward_cpu)]
    }
}

/// Runs `f` on contiguous copies of `inputs` (views are copied, contiguous
/// tensors shared), half types widened to `f32`.
fn contiguous_in_compute_dtype(
    inputs: &[&RawTensor],
    f: impl FnOnce(&[&RawTensor]) -> Result<Vec<RawTensor>>,
) -> Result<Vec<RawTensor>> {
    let owned: Vec<RawTensor> = inputs
        .iter()
        .map(|t| t.contiguous())
        .collect::<Result<_>>()?;
    let refs: Vec<&RawTensor> = owned.iter().collect();
    in_compute_dtype(&refs, f)
}

fn batch_norm_forward_cpu(op: &BatchNormForward, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
    contiguous_in_compute_dtype(inputs, |t| {
        let p = Planes::of(t[0], "batch_norm_forward")?;
        macro_rules! run {
            ($T:ty) => {{
                let s = slices::<$T>(t)?;
                let stats = channel_stats(p, s[0]);
                let (mut a, mut b) = (Vec::with_capacity(p.c), Vec::with_capacity(p.c));
                for (ch, &(mean, var)) in stats.iter().enumerate() {
                    let ac = s[1][ch].to_f64() / (var + op.eps).sqrt();
                    a.push(<$T>::from_f64(ac));
                    b.push(<$T>::from_f64(s[2][ch].to_f64() - ac * mean));
                }
                let mut y =
                    RawTensor::for_overwrite(t[0].shape().clone(), t[0].dtype(), t[0].device())?;
                let out = y.host_slice_mut::<$T>()?;
                let shortcut = s.get(3).copied();
                match op.relu {
                    false => scale_shift::<$T, false>(p, s[0], shortcut, &a, &b, out),
                    true => scale_shift::<$T, true>(p, s[0], shortcut, &a, &b, out),
                }
                let (mean, var) = stats.into_iter().unzip();
                let dtype = t[0].dtype();
                vec![y, vector(mean, dtype, t[0])?, vector(var, dtype, t[0])?]
            }};
        }
        Ok(match t[0].dtype() {
            DType::F32 => run!(f32),
            DType::F64 => run!(f64),
            dtype => {
                return Err(Error::UnsupportedDType {
                    op: "batch_norm_forward",
                    dtype,
                })
            }
        })
    })
}

impl Operator for BatchNormBackward {
    fn name(&self) -> &'static str {
        "batch_norm_backward"
    }
    fn check(&self, inputs: &[&RawTensor]) -> Result<()> {
        check_float_inputs(self.name(), inputs, 5)?;
        let p = Planes::of(inputs[1], self.name())?;
        if inputs[0].shape() != inputs[1].shape() {
            return Err(Error::ShapeMismatch {
                op: self.name(),
                lhs: inputs[0].shape().clone(),
                rhs: inputs[1].shape().clone(),
                detail: " (the gradient must have the input's shape)".into(),
            });
        }
        for (t, what) in inputs[2..]
            .iter()
            .zip(["the mean", "the variance", "the weight"])
        {
            check_vector(self.name(), what, t, p.c)?;
        }
        Ok(())
    }
    fn composite(&self, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
        let (g, x) = (inputs[0], inputs[1]);
        let c = x.dims()[1];
        let m = (x.elem_count() / c) as f64;
        let r = per_channel(&inputs[3].add_scalar(self.eps)?.powf(-0.5)?, c)?;
        let x_hat = x.sub(&per_channel(inputs[2], c)?)?.mul(&r)?;
        let dbeta = g.sum(vec![0, 2, 3], true)?;
        let dgamma = g.mul(&x_hat)?.sum(vec![0, 2, 3], true)?;
        let dx = g
            .sub(&dbeta.div_scalar(m)?)?
            .sub(&x_hat.mul(&dgamma.div_scalar(m)?)?)?
            .mul(&r.mul(&per_channel(inputs[4], c)?)?)?;
        Ok(vec![dx, dgamma.reshape(c)?, dbeta.reshape(c)?])
    }
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        vec![(DeviceKind::CPU, batch_norm_backward_cpu)]
    }
}

fn batch_norm_backward_cpu(
    op: &BatchNormBackward,
    inputs: &[&RawTensor],
) -> Result<Vec<RawTensor>> {
    contiguous_in_compute_dtype(inputs, |t| {
        let p = Planes::of(t[1], "batch_norm_backward")?;
        macro_rules! run {
            ($T:ty) => {{
                let s = slices::<$T>(t)?;
                let mean: Vec<f64> = s[2].iter().map(|v| v.to_f64()).collect();
                let sums = grad_sums(p, s[0], s[1], &mean);
                let (mut coef, mut dgamma, mut dbeta) = (vec![], vec![], vec![]);
                for (ch, &(sg, sgx)) in sums.iter().enumerate() {
                    let r = 1.0 / (s[3][ch].to_f64() + op.eps).sqrt();
                    let k = s[4][ch].to_f64() * r;
                    // γr·(g − Σg/M − x̂·Σ(g·x̂)/M) with x̂ = r(x − μ) and
                    // Σ(g·x̂) = r·Σg(x − μ).
                    let beta = -k * r * r * sgx / p.m();
                    let delta = -k * sg / p.m() - beta * mean[ch];
                    coef.push([k, beta, delta].map(<$T>::from_f64));
                    dgamma.push(r * sgx);
                    dbeta.push(sg);
                }
                let mut dx =
                    RawTensor::for_overwrite(t[1].shape().clone(), t[1].dtype(), t[1].device())?;
                input_grad(p, s[0], s[1], &coef, dx.host_slice_mut::<$T>()?);
                let dtype = t[1].dtype();
                vec![
                    dx,
                    vector(dgamma, dtype, t[1])?,
                    vector(dbeta, dtype, t[1])?,
                ]
            }};
        }
        Ok(match t[1].dtype() {
            DType::F32 => run!(f32),
            DType::F64 => run!(f64),
            dtype => {
                return Err(Error::UnsupportedDType {
                    op: "batch_norm_backward",
                    dtype,
                })
            }
        })
    })
}

/// The batch statistics a forward pass computed: `(μ, σ²)`, `[C]` each.
type Saved = Arc<Mutex<Option<(RawTensor, RawTensor)>>>;

fn saved(s: &Saved) -> Option<(RawTensor, RawTensor)> {
    s.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

// ANCHOR: train_op
/// Training-mode batch norm (plus a shortcut with `shortcut`, followed by
/// a ReLU with `relu`) as one differentiable operation: inputs `x`, `γ`,
/// `β` (and `s`). Its forward pass keeps the batch statistics for the
/// backward pass (and for the caller, which updates the running averages).
struct BatchNormTrain {
    eps: f64,
    relu: bool,
    shortcut: bool,
    saved: Saved,
}

impl CustomOp for BatchNormTrain {
    fn name(&self) -> &'static str {
        match (self.shortcut, self.relu) {
            (false, false) => "batch_norm",
            (false, true) => "batch_norm_relu",
            (true, false) => "batch_norm_add",
            (true, true) => "batch_norm_add_relu",
        }
    }
    fn forward(&self, inputs: &[&RawTensor]) -> Result<RawTensor> {
        let op = BatchNormForward {
            eps: self.eps,
            relu: self.relu,
            shortcut: self.shortcut,
        };
        let mut out = call(&op, inputs)?;
        let (var, mean, y) = (out.remove(2), out.remove(1), out.remove(0));
        *self.saved.lock().unwrap_or_else(PoisonError::into_inner) = Some((mean, var));
        Ok(y)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (x, gamma) = (ctx.input(0), ctx.input(1));
        if is_grad_enabled() {
            // create_graph: the same formula, in differentiable operations,
            // with ReLU's gradient a fixed mask (its derivative is 0).
            let g = match self.relu {
                false => g.clone(),
                true => {
                    let y = ctx.output.data();
                    let mask = y.cmp_scalar(CmpOp::Gt, 0.0)?.to_dtype(y.dtype())?;
                    g.mul(&Tensor::from_raw(mask))?
                }
            };
            let mut grads = differentiable_backward(x, gamma, &g, self.eps)?;
            if self.shortcut {
                grads.push(Some(g));
            }
            return Ok(grads);
        }
        let (mean, var) = saved(&self.saved)
            .ok_or_else(|| Error::invalid("batch_norm", "backward ran before forward"))?;
        let mut g = g.data();
        if self.relu {
            // ReLU's gradient first, g where the output is positive: its
            // own pass, which compiles to vector selects. (Masking inside
            // batch norm's two passes instead was measured slower.)
            g = call(&ReluBackward, &[&ctx.output.data(), &g])?.remove(0);
        }
        let raw = [g, x.data(), mean, var, gamma.data()];
        let op = BatchNormBackward { eps: self.eps };
        let out = call(&op, &raw.iter().collect::<Vec<_>>())?;
        // The shortcut's gradient is the (masked) gradient of the sum.
        let shortcut = self.shortcut.then(|| raw[0].clone());
        Ok(out
            .into_iter()
            .chain(shortcut)
            .map(|t| Some(Tensor::from_raw(t)))
            .collect())
    }
}
// ANCHOR_END: train_op

/// The backward formula of the module docs with differentiable operations
/// (statistics recomputed from `x`), so that it can be differentiated again.
fn differentiable_backward(
    x: &Tensor,
    gamma: &Tensor,
    g: &Tensor,
    eps: f64,
) -> Result<Vec<Option<Tensor>>> {
    let c = x.dims()[1];
    let m = (x.elem_count() / c) as f64;
    let axes = vec![0, 2, 3];
    let centred = x.sub(&x.mean(axes.clone(), true)?)?;
    let r = centred
        .mul(&centred)?
        .mean(axes.clone(), true)?
        .add_scalar(eps)?
        .powf(-0.5)?;
    let x_hat = centred.mul(&r)?;
    let dbeta = g.sum(axes.clone(), true)?;
    let dgamma = g.mul(&x_hat)?.sum(axes, true)?;
    let dx = g
        .sub(&dbeta.affine(1.0 / m, 0.0)?)?
        .sub(&x_hat.mul(&dgamma.affine(1.0 / m, 0.0)?)?)?
        .mul(&r.mul(&per_channel(gamma, c)?)?)?;
    Ok(vec![
        Some(dx),
        Some(dgamma.reshape(c)?),
        Some(dbeta.reshape(c)?),
    ])
}

/// Training-mode batch norm of `x: [N, C, H, W]` with the affine `γ`, `β`
/// (`[C]`), plus `shortcut` (like `x`) when there is one, followed by a
/// ReLU when `relu` is set: the output, and the batch's per-channel mean
/// and biased variance (`[C]`, not part of any graph) for the running
/// averages.
pub fn batch_norm_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    shortcut: Option<&Tensor>,
    eps: f64,
    relu: bool,
) -> Result<(Tensor, RawTensor, RawTensor)> {
    let stats: Saved = Arc::default();
    let op = BatchNormTrain {
        eps,
        relu,
        shortcut: shortcut.is_some(),
        saved: stats.clone(),
    };
    let inputs: Vec<&Tensor> = [x, gamma, beta].into_iter().chain(shortcut).collect();
    let y = Tensor::apply(op, &inputs)?;
    let (mean, var) =
        saved(&stats).ok_or_else(|| Error::invalid("batch_norm", "forward kept no statistics"))?;
    Ok((y, mean, var))
}
