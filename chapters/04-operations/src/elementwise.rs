//! Elementwise operations: powers, the activation functions, trigonometry,
//! `maximum`/`minimum`, comparisons and `where_cond`.
//!
//! Each operation is a [`CustomOp`] whose forward runs on raw tensors (one or
//! a few backend primitives) and whose backward is the derivative written
//! with differentiable tensor operations, so that `create_graph` can
//! differentiate it again. Where the derivative has a kink (`relu` at 0,
//! `abs` at 0, `clamp` at its bounds, ties in `maximum`) the doc comment says
//! which one-sided value we pick; it is always the one PyTorch picks.

use chapter_02::dispatch::call;
use chapter_02::{
    CmpOp, DType, DeviceKind, Error, Kernel, Operator, Result, Tensor as RawTensor, WithDType,
};
use chapter_03::{is_grad_enabled, BackwardCtx, CustomOp, Tensor};
use rayon::prelude::*;
use std::f64::consts::{FRAC_1_SQRT_2, PI};

/// `√(2/π)`, the constant of the tanh approximation of GELU.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
/// The cubic coefficient of the tanh approximation of GELU.
const GELU_TANH_C: f64 = 0.044_715;

// ANCHOR: helpers
/// A tensor that takes no part in differentiation: masks and the other
/// piecewise-constant factors of a derivative.
fn constant(t: RawTensor) -> Tensor {
    Tensor::from_raw(t)
}

/// A `u8` mask as 0.0/1.0 in the float dtype of `like`, as a constant.
fn mask_like(mask: &RawTensor, like: &RawTensor) -> Result<Tensor> {
    Ok(constant(mask.to_dtype(like.dtype())?))
}

/// A 0-d constant holding `v`, in the dtype and on the device of `like`.
fn scalar_like(v: f64, like: &Tensor) -> Result<Tensor> {
    Ok(constant(RawTensor::full(
        v,
        (),
        like.dtype(),
        &like.device(),
    )?))
}

/// Sums a broadcast gradient back to the shape of input `i`, or `None` when
/// that input needs no gradient.
fn grad_for(
    ctx: &BackwardCtx<'_>,
    i: usize,
    g: impl FnOnce() -> Result<Tensor>,
) -> Result<Option<Tensor>> {
    if !ctx.needs_grad(i) {
        return Ok(None);
    }
    Ok(Some(g()?.sum_to(&ctx.input(i).dims())?))
}

/// Composite forwards check the dtype themselves, so that the error names
/// the operation the user called, not the first primitive inside it.
fn check_float(x: &RawTensor, op: &'static str) -> Result<()> {
    if !x.dtype().is_float() {
        return Err(Error::UnsupportedDType {
            op,
            dtype: x.dtype(),
        });
    }
    Ok(())
}
// ANCHOR_END: helpers

// ANCHOR: pow
/// `aᵇ` with a tensor exponent, broadcasting.
///
/// ∂/∂a = b·aᵇ⁻¹ and ∂/∂b = aᵇ·ln a. Two corners follow PyTorch: where
/// `b = 0` the first is 0 (not `0·0⁻¹ = NaN` at `a = 0`), and where `a = 0`
/// and `b ≥ 0` the second is 0 (not `0·ln 0 = NaN`).
struct Pow;
impl CustomOp for Pow {
    fn name(&self) -> &'static str {
        "pow"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].pow(x[1])
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (a, b, y) = (ctx.input(0), ctx.input(1), ctx.output);
        let zero = scalar_like(0.0, g)?;
        let ga = grad_for(ctx, 0, || {
            let d = b.mul(&a.pow(&b.add_scalar(-1.0)?)?)?;
            let b_is_zero = constant(b.data().cmp_scalar(CmpOp::Eq, 0.0)?);
            g.mul(&where_cond(&b_is_zero, &zero, &d)?)
        })?;
        let gb = grad_for(ctx, 1, || {
            let d = y.mul(&a.log()?)?;
            let (ar, br) = (a.data(), b.data());
            let a_zero = ar.cmp_scalar(CmpOp::Eq, 0.0)?.to_dtype(ar.dtype())?;
            let b_nonneg = br.cmp_scalar(CmpOp::Ge, 0.0)?.to_dtype(ar.dtype())?;
            let corner = a_zero.mul(&b_nonneg)?.cmp_scalar(CmpOp::Ne, 0.0)?;
            g.mul(&where_cond(&constant(corner), &zero, &d)?)
        })?;
        Ok(vec![ga, gb])
    }
}
// ANCHOR_END: pow

// ANCHOR: sqrt
/// `√x`: the derivative `1/(2√x)` is read off the output `y = √x`.
struct Sqrt;
impl CustomOp for Sqrt {
    fn name(&self) -> &'static str {
        "sqrt"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].sqrt()
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.div(&ctx.output.mul_scalar(2.0)?)?)])
    }
}
// ANCHOR_END: sqrt

// ANCHOR: abs
/// `|x|`: the derivative is `sign(x)`, and we take 0 at the kink `x = 0`
/// (a subgradient; PyTorch's choice too). `sign` is piecewise constant, so
/// it enters the graph as a constant.
struct Abs;
impl CustomOp for Abs {
    fn name(&self) -> &'static str {
        "abs"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].abs()
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let sign = constant(ctx.input(0).data().sign()?);
        Ok(vec![Some(g.mul(&sign)?)])
    }
}
// ANCHOR_END: abs

// ANCHOR: clamp
/// `min(max(x, lo), hi)`: slope 1 where `lo ≤ x ≤ hi` and 0 outside. At the
/// bounds themselves the gradient passes, as in PyTorch.
struct Clamp {
    min: f64,
    max: f64,
}
impl CustomOp for Clamp {
    fn name(&self) -> &'static str {
        "clamp"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].clamp(self.min, self.max)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = ctx.input(0).data();
        let above_min = mask_like(&x.cmp_scalar(CmpOp::Ge, self.min)?, &x)?;
        let below_max = mask_like(&x.cmp_scalar(CmpOp::Le, self.max)?, &x)?;
        Ok(vec![Some(g.mul(&above_min)?.mul(&below_max)?)])
    }
}
// ANCHOR_END: clamp

// ANCHOR: sigmoid
/// `σ(x) = 1/(1 + e⁻ˣ)`, with `σ' = σ(1 − σ)` read off the output.
///
/// The forward is chapter 02's kernel, which computes `eˣ/(1 + eˣ)` for
/// negative `x`: the textbook form would evaluate `e⁻ˣ = e¹⁰⁰⁰ = ∞` there.
struct Sigmoid;
impl CustomOp for Sigmoid {
    fn name(&self) -> &'static str {
        "sigmoid"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].sigmoid()
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let y = ctx.output;
        let d = y.mul(&y.affine(-1.0, 1.0)?)?;
        Ok(vec![Some(g.mul(&d)?)])
    }
}
// ANCHOR_END: sigmoid

// ANCHOR: relu
/// `max(x, 0)`: slope 1 for `x > 0`, 0 otherwise (including at the kink).
struct Relu;
impl CustomOp for Relu {
    fn name(&self) -> &'static str {
        "relu"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].relu()
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = ctx.input(0).data();
        if !is_grad_enabled() {
            // Nothing will differentiate this gradient: one fused pass.
            let dx = call(&ReluBackward, &[&x, &g.data()])?.remove(0);
            return Ok(vec![Some(constant(dx))]);
        }
        let positive = mask_like(&x.cmp_scalar(CmpOp::Gt, 0.0)?, &x)?;
        Ok(vec![Some(g.mul(&positive)?)])
    }
}
// ANCHOR_END: relu

// ANCHOR: relu_backward
/// ReLU's vector-Jacobian product as a registry operator: inputs `x` and
/// the output's gradient `g`, output `g` where `x > 0` and `0` elsewhere
/// (like PyTorch's `threshold_backward`, a `NaN` gradient where `x ≤ 0`
/// gives 0). The composite is the three passes of the differentiable
/// backward above (compare, convert the mask, multiply); the CPU kernel is
/// one pass, on every core when the tensor is large. ResNet14 runs 13
/// ReLUs on up to 1.6 million values each per step.
pub struct ReluBackward;

impl Operator for ReluBackward {
    fn name(&self) -> &'static str {
        "relu_backward"
    }
    fn check(&self, inputs: &[&RawTensor]) -> Result<()> {
        check_same_float("relu_backward", inputs, 2)
    }
    fn composite(&self, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
        let (x, g) = (inputs[0], inputs[1]);
        let positive = x.cmp_scalar(CmpOp::Gt, 0.0)?.to_dtype(g.dtype())?;
        Ok(vec![g.mul(&positive)?])
    }
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        vec![(DeviceKind::CPU, relu_backward_cpu)]
    }
}

fn relu_backward_cpu(_: &ReluBackward, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
    let (x, g) = (inputs[0].contiguous()?, inputs[1].contiguous()?);
    crate::row_kernels::in_compute_dtype(&[&x, &g], |t| {
        Ok(vec![match t[0].dtype() {
            DType::F32 => relu_backward_typed::<f32>(t[0], t[1])?,
            DType::F64 => relu_backward_typed::<f64>(t[0], t[1])?,
            dtype => {
                return Err(Error::UnsupportedDType {
                    op: "relu_backward",
                    dtype,
                })
            }
        }])
    })
}

fn relu_backward_typed<T: WithDType>(x: &RawTensor, g: &RawTensor) -> Result<RawTensor> {
    let (xs, gs) = (x.host_slice::<T>()?, g.host_slice::<T>()?);
    let mut dx = RawTensor::for_overwrite(x.shape().clone(), x.dtype(), x.device())?;
    let zero = T::from_f64(0.0);
    let pass = |start: usize, out: &mut [T]| {
        for ((o, &x), &g) in out.iter_mut().zip(&xs[start..]).zip(&gs[start..]) {
            *o = if x > zero { g } else { zero };
        }
    };
    let out = dx.host_slice_mut::<T>()?;
    let cores = crate::row_kernels::cores();
    if out.len() < RELU_PARALLEL_MIN || cores == 1 {
        pass(0, out);
    } else {
        let per = out.len().div_ceil(cores).next_multiple_of(16);
        out.par_chunks_mut(per)
            .enumerate()
            .for_each(|(c, chunk)| pass(c * per, chunk));
    }
    Ok(dx)
}

/// Below this many elements the ReLU backward runs on one thread.
const RELU_PARALLEL_MIN: usize = 1 << 16;
// ANCHOR_END: relu_backward

// ANCHOR: leaky_relu
/// `x` for `x > 0`, `slope·x` otherwise: the derivative is 1 or `slope`.
struct LeakyRelu(f64);
impl CustomOp for LeakyRelu {
    fn name(&self) -> &'static str {
        "leaky_relu"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].leaky_relu(self.0)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = ctx.input(0).data();
        let one = RawTensor::full(1.0, (), x.dtype(), x.device())?;
        let slope = RawTensor::full(self.0, (), x.dtype(), x.device())?;
        let d = x.cmp_scalar(CmpOp::Gt, 0.0)?.where_cond(&one, &slope)?;
        Ok(vec![Some(g.mul(&constant(d))?)])
    }
}
// ANCHOR_END: leaky_relu

// ANCHOR: erf
/// The error function, needed (differentiably) by GELU's derivative:
/// `erf'(x) = (2/√π)·e^(−x²)`. Kept private: it is a building block here,
/// not an activation.
struct Erf;
impl CustomOp for Erf {
    fn name(&self) -> &'static str {
        "erf"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].erf()
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = ctx.input(0);
        let d = x.mul(x)?.neg()?.exp()?.mul_scalar(2.0 / PI.sqrt())?;
        Ok(vec![Some(g.mul(&d)?)])
    }
}

fn erf(x: &Tensor) -> Result<Tensor> {
    Tensor::apply(Erf, &[x])
}
// ANCHOR_END: erf

// ANCHOR: gelu
/// GELU, exact form: `x·Φ(x)` with `Φ(x) = ½(1 + erf(x/√2))` the standard
/// normal CDF. By the product rule, `d/dx = Φ(x) + x·φ(x)` where
/// `φ(x) = e^(−x²/2)/√(2π)` is the normal density.
///
/// Forward and backward are the operators [`GeluForward`] and
/// [`GeluBackward`]: one fused pass on the CPU (see
/// [`gelu_kernels`](crate::gelu_kernels)), their composites elsewhere.
/// When the backward pass is itself recorded (`create_graph`), the
/// derivative is written with autograd operations instead, so that it can
/// be differentiated again.
struct Gelu;
impl CustomOp for Gelu {
    fn name(&self) -> &'static str {
        "gelu"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        check_float(x[0], "gelu")?;
        Ok(call(&GeluForward, x)?.remove(0))
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = ctx.input(0);
        if !is_grad_enabled() {
            let dx = call(&GeluBackward, &[&x.data(), &g.data()])?.remove(0);
            return Ok(vec![Some(constant(dx))]);
        }
        let cdf = erf(&x.mul_scalar(FRAC_1_SQRT_2)?)?.affine(0.5, 0.5)?;
        let pdf = x
            .mul(x)?
            .mul_scalar(-0.5)?
            .exp()?
            .mul_scalar(1.0 / (2.0 * PI).sqrt())?;
        let d = cdf.add(&x.mul(&pdf)?)?;
        Ok(vec![Some(g.mul(&d)?)])
    }
}

/// GELU's forward as a registry operator: input `x`, output `x·Φ(x)`.
pub struct GeluForward;

impl Operator for GeluForward {
    fn name(&self) -> &'static str {
        "gelu"
    }
    fn check(&self, inputs: &[&RawTensor]) -> Result<()> {
        check_same_float("gelu", inputs, 1)
    }
    fn composite(&self, x: &[&RawTensor]) -> Result<Vec<RawTensor>> {
        let cdf = x[0].affine(FRAC_1_SQRT_2, 0.0)?.erf()?.affine(0.5, 0.5)?;
        Ok(vec![x[0].mul(&cdf)?])
    }
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        vec![(DeviceKind::CPU, crate::gelu_kernels::gelu_cpu)]
    }
}

/// GELU's vector-Jacobian product: inputs `x` and the output's gradient
/// `g`, output `g·(Φ(x) + x·φ(x))`.
pub struct GeluBackward;

impl Operator for GeluBackward {
    fn name(&self) -> &'static str {
        "gelu_backward"
    }
    fn check(&self, inputs: &[&RawTensor]) -> Result<()> {
        check_same_float("gelu_backward", inputs, 2)
    }
    fn composite(&self, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
        let (x, g) = (inputs[0], inputs[1]);
        let cdf = x.affine(FRAC_1_SQRT_2, 0.0)?.erf()?.affine(0.5, 0.5)?;
        let pdf = x
            .sqr()?
            .affine(-0.5, 0.0)?
            .exp()?
            .affine(1.0 / (2.0 * PI).sqrt(), 0.0)?;
        Ok(vec![g.mul(&cdf.add(&x.mul(&pdf)?)?)?])
    }
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        vec![(DeviceKind::CPU, crate::gelu_kernels::gelu_backward_cpu)]
    }
}

/// `arity` float tensors of one shape and dtype, or an error naming `op`.
fn check_same_float(op: &'static str, inputs: &[&RawTensor], arity: usize) -> Result<()> {
    if inputs.len() != arity {
        return Err(Error::invalid(
            op,
            format!("takes {arity} tensors, got {}", inputs.len()),
        ));
    }
    let x = inputs[0];
    check_float(x, op)?;
    for other in &inputs[1..] {
        if other.shape() != x.shape() {
            return Err(Error::ShapeMismatch {
                op,
                lhs: x.shape().clone(),
                rhs: other.shape().clone(),
                detail: String::new(),
            });
        }
        if other.dtype() != x.dtype() {
            return Err(Error::DTypeMismatch {
                op,
                lhs: x.dtype(),
                rhs: other.dtype(),
            });
        }
    }
    Ok(())
}
// ANCHOR_END: gelu

// ANCHOR: gelu_tanh
/// GELU, tanh approximation (GPT-2's): `½x(1 + tanh u)` with
/// `u = √(2/π)(x + 0.044715x³)`. With `t = tanh u`:
/// `d/dx = ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²)`.
struct GeluTanh;

/// `u = √(2/π)(x + c·x³)`, computed as `x·(k + k·c·x²)`.
fn gelu_tanh_inner_raw(x: &RawTensor) -> Result<RawTensor> {
    x.sqr()?
        .affine(SQRT_2_OVER_PI * GELU_TANH_C, SQRT_2_OVER_PI)?
        .mul(x)
}

impl CustomOp for GeluTanh {
    fn name(&self) -> &'static str {
        "gelu_tanh"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        check_float(x[0], "gelu_tanh")?;
        let t = gelu_tanh_inner_raw(x[0])?.tanh()?;
        t.affine(0.5, 0.5)?.mul(x[0])
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = ctx.input(0);
        let x2 = x.mul(x)?;
        let u = x2
            .affine(SQRT_2_OVER_PI * GELU_TANH_C, SQRT_2_OVER_PI)?
            .mul(x)?;
        let t = u.tanh()?;
        let du = x2.affine(3.0 * GELU_TANH_C * SQRT_2_OVER_PI, SQRT_2_OVER_PI)?;
        let dt = t.mul(&t)?.affine(-1.0, 1.0)?.mul(&du)?;
        let d = t.affine(0.5, 0.5)?.add(&x.mul(&dt)?.mul_scalar(0.5)?)?;
        Ok(vec![Some(g.mul(&d)?)])
    }
}
// ANCHOR_END: gelu_tanh

// ANCHOR: silu
/// SiLU (swish): `x·σ(x)`, with `d/dx = σ(x)(1 + x(1 − σ(x)))`.
struct Silu;
impl CustomOp for Silu {
    fn name(&self) -> &'static str {
        "silu"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        check_float(x[0], "silu")?;
        x[0].mul(&x[0].sigmoid()?)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = ctx.input(0);
        let s = x.sigmoid()?;
        let d = s.mul(&x.mul(&s.affine(-1.0, 1.0)?)?.add_scalar(1.0)?)?;
        Ok(vec![Some(g.mul(&d)?)])
    }
}
// ANCHOR_END: silu

// ANCHOR: log1p
/// `ln(1 + u)` accurate for tiny `u`, from primitives we have (Kahan's
/// trick): with `w = 1 + u` rounded, `ln(w)·u/(w − 1)` cancels the rounding
/// error of `w`; when `w` rounds to exactly 1, `ln(1 + u) = u` to full
/// precision. `ln(1 + 1e-20)` is `1e-20`, where `ln(w)` alone gives 0.
fn log1p_raw(u: &RawTensor) -> Result<RawTensor> {
    let w = u.add_scalar(1.0)?;
    let corrected = w.log()?.mul(u)?.div(&w.sub_scalar(1.0)?)?;
    w.cmp_scalar(CmpOp::Eq, 1.0)?.where_cond(u, &corrected)
}
// ANCHOR_END: log1p

// ANCHOR: softplus
/// Softplus, PyTorch's form: `x` where `βx > threshold`, else
/// `ln(1 + e^(βx))/β`. Its derivative is `σ(βx)` (1 in the linear branch).
///
/// Two things keep it finite and accurate. The threshold switches to the
/// identity before `e^(βx)` overflows. And `ln(1 + eᶻ)` is evaluated as
/// `max(z, 0) + log1p(e^(−|z|))`: the exponential never exceeds 1, and for
/// very negative `z` the tiny result keeps its digits.
struct Softplus {
    beta: f64,
    threshold: f64,
}
impl CustomOp for Softplus {
    fn name(&self) -> &'static str {
        "softplus"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        check_float(x[0], "softplus")?;
        let z = x[0].mul_scalar(self.beta)?;
        let soft = z.relu()?.add(&log1p_raw(&z.abs()?.neg()?.exp()?)?)?;
        let linear = z.cmp_scalar(CmpOp::Gt, self.threshold)?;
        linear.where_cond(x[0], &soft.div_scalar(self.beta)?)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = ctx.input(0);
        let z = x.mul_scalar(self.beta)?;
        let linear = constant(z.data().cmp_scalar(CmpOp::Gt, self.threshold)?);
        let d = where_cond(&linear, &scalar_like(1.0, g)?, &z.sigmoid()?)?;
        Ok(vec![Some(g.mul(&d)?)])
    }
}
// ANCHOR_END: softplus

// ANCHOR: trig
/// `sin x`, whose derivative `cos x` is itself differentiable.
struct Sin;
impl CustomOp for Sin {
    fn name(&self) -> &'static str {
        "sin"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].sin()
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.mul(&ctx.input(0).cos()?)?)])
    }
}

/// `cos x`, with derivative `−sin x`.
struct Cos;
impl CustomOp for Cos {
    fn name(&self) -> &'static str {
        "cos"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].cos()
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.mul(&ctx.input(0).sin()?.neg()?)?)])
    }
}
// ANCHOR_END: trig

// ANCHOR: recip_square
/// `1/x`, with derivative `−1/x² = −y²` read off the output.
struct Recip;
impl CustomOp for Recip {
    fn name(&self) -> &'static str {
        "recip"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].recip()
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let y = ctx.output;
        Ok(vec![Some(g.mul(&y.mul(y)?.neg()?)?)])
    }
}

/// `x²`, with derivative `2x`.
struct Square;
impl CustomOp for Square {
    fn name(&self) -> &'static str {
        "square"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].sqr()
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.mul(&ctx.input(0).mul_scalar(2.0)?)?)])
    }
}
// ANCHOR_END: recip_square

// ANCHOR: maximum
/// `max(a, b)` (or `min`) elementwise, broadcasting. The gradient goes to
/// whichever input won; on a tie each gets half, as in PyTorch: the
/// function is not differentiable there, and splitting is the choice that
/// keeps `maximum(a, a) = a` with gradient 1.
struct Extremum {
    is_max: bool,
}
impl CustomOp for Extremum {
    fn name(&self) -> &'static str {
        if self.is_max {
            "maximum"
        } else {
            "minimum"
        }
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        if self.is_max {
            x[0].maximum(x[1])
        } else {
            x[0].minimum(x[1])
        }
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (a, b) = (ctx.input(0).data(), ctx.input(1).data());
        let (wins, loses) = if self.is_max {
            (a.gt(&b)?, a.lt(&b)?)
        } else {
            (a.lt(&b)?, a.gt(&b)?)
        };
        let tie = a.eq(&b)?.to_dtype(a.dtype())?.mul_scalar(0.5)?;
        let wa = constant(wins.to_dtype(a.dtype())?.add(&tie)?);
        let wb = constant(loses.to_dtype(a.dtype())?.add(&tie)?);
        Ok(vec![
            grad_for(ctx, 0, || g.mul(&wa))?,
            grad_for(ctx, 1, || g.mul(&wb))?,
        ])
    }
}
// ANCHOR_END: maximum

// ANCHOR: where_cond
/// `cond ? on_true : on_false`, all three broadcast together. The gradient
/// is routed the same way: `on_true` receives `g` where `cond` holds and 0
/// elsewhere, `on_false` the rest, each summed back to its own shape. The
/// condition is a `u8` mask and gets no gradient.
struct WhereCond;
impl CustomOp for WhereCond {
    fn name(&self) -> &'static str {
        "where_cond"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].where_cond(x[1], x[2])
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let cond = ctx.input(0);
        let zero = scalar_like(0.0, g)?;
        let gt = grad_for(ctx, 1, || where_cond(cond, g, &zero))?;
        let gf = grad_for(ctx, 2, || where_cond(cond, &zero, g))?;
        Ok(vec![None, gt, gf])
    }
}

/// `cond ? on_true : on_false` elementwise (`torch.where`). `cond` is a `u8`
/// mask (the result of a comparison); the three shapes broadcast together.
pub fn where_cond(cond: &Tensor, on_true: &Tensor, on_false: &Tensor) -> Result<Tensor> {
    Tensor::apply(WhereCond, &[cond, on_true, on_false])
}
// ANCHOR_END: where_cond

// ANCHOR: trait
/// Elementwise operations on autograd tensors. `use chapter_04::prelude::*`
/// brings them into scope.
pub trait ElementwiseOps {
    /// `selfᵉˣᵖᵒⁿᵉⁿᵗ` elementwise with a tensor exponent (broadcasting);
    /// differentiable in both. For a constant exponent use `powf`.
    fn pow(&self, exponent: &Tensor) -> Result<Tensor>;
    /// `√x`.
    fn sqrt(&self) -> Result<Tensor>;
    /// `|x|` (gradient 0 at 0).
    fn abs(&self) -> Result<Tensor>;
    /// Limits every element to `[min, max]`; gradient 1 inside (bounds
    /// included), 0 outside.
    fn clamp(&self, min: f64, max: f64) -> Result<Tensor>;
    /// `1/(1 + e⁻ˣ)`, stable for large `|x|`.
    fn sigmoid(&self) -> Result<Tensor>;
    /// `max(x, 0)`.
    fn relu(&self) -> Result<Tensor>;
    /// `x` for `x > 0`, `slope·x` otherwise.
    fn leaky_relu(&self, slope: f64) -> Result<Tensor>;
    /// GELU, exact form `½x(1 + erf(x/√2))`.
    fn gelu(&self) -> Result<Tensor>;
    /// GELU, tanh approximation `½x(1 + tanh(√(2/π)(x + 0.044715x³)))`.
    fn gelu_tanh(&self) -> Result<Tensor>;
    /// SiLU (swish): `x·σ(x)`.
    fn silu(&self) -> Result<Tensor>;
    /// `ln(1 + e^(βx))/β`, or `x` where `βx > threshold` (PyTorch's
    /// defaults are `beta = 1`, `threshold = 20`).
    fn softplus(&self, beta: f64, threshold: f64) -> Result<Tensor>;
    fn sin(&self) -> Result<Tensor>;
    fn cos(&self) -> Result<Tensor>;
    /// `1/x`.
    fn recip(&self) -> Result<Tensor>;
    /// `x²`.
    fn square(&self) -> Result<Tensor>;
    /// Elementwise larger value, broadcasting (ties split the gradient).
    fn maximum(&self, rhs: &Tensor) -> Result<Tensor>;
    /// Elementwise smaller value, broadcasting (ties split the gradient).
    fn minimum(&self, rhs: &Tensor) -> Result<Tensor>;
    /// `self == rhs` as a `u8` mask (not differentiable).
    fn eq_t(&self, rhs: &Tensor) -> Result<Tensor>;
    /// `self != rhs` as a `u8` mask.
    fn ne_t(&self, rhs: &Tensor) -> Result<Tensor>;
    /// `self < rhs` as a `u8` mask.
    fn lt_t(&self, rhs: &Tensor) -> Result<Tensor>;
    /// `self <= rhs` as a `u8` mask.
    fn le_t(&self, rhs: &Tensor) -> Result<Tensor>;
    /// `self > rhs` as a `u8` mask.
    fn gt_t(&self, rhs: &Tensor) -> Result<Tensor>;
    /// `self >= rhs` as a `u8` mask.
    fn ge_t(&self, rhs: &Tensor) -> Result<Tensor>;
}
// ANCHOR_END: trait

// ANCHOR: impl
impl ElementwiseOps for Tensor {
    fn pow(&self, exponent: &Tensor) -> Result<Tensor> {
        Tensor::apply(Pow, &[self, exponent])
    }
    fn sqrt(&self) -> Result<Tensor> {
        Tensor::apply(Sqrt, &[self])
    }
    fn abs(&self) -> Result<Tensor> {
        Tensor::apply(Abs, &[self])
    }
    fn clamp(&self, min: f64, max: f64) -> Result<Tensor> {
        Tensor::apply(Clamp { min, max }, &[self])
    }
    fn sigmoid(&self) -> Result<Tensor> {
        Tensor::apply(Sigmoid, &[self])
    }
    fn relu(&self) -> Result<Tensor> {
        Tensor::apply(Relu, &[self])
    }
    fn leaky_relu(&self, slope: f64) -> Result<Tensor> {
        Tensor::apply(LeakyRelu(slope), &[self])
    }
    fn gelu(&self) -> Result<Tensor> {
        Tensor::apply(Gelu, &[self])
    }
    fn gelu_tanh(&self) -> Result<Tensor> {
        Tensor::apply(GeluTanh, &[self])
    }
    fn silu(&self) -> Result<Tensor> {
        Tensor::apply(Silu, &[self])
    }
    fn softplus(&self, beta: f64, threshold: f64) -> Result<Tensor> {
        if beta == 0.0 || !beta.is_finite() {
            return Err(Error::invalid(
                "softplus",
                format!("beta must be finite and non-zero, got {beta}"),
            ));
        }
        Tensor::apply(Softplus { beta, threshold }, &[self])
    }
    fn sin(&self) -> Result<Tensor> {
        Tensor::apply(Sin, &[self])
    }
    fn cos(&self) -> Result<Tensor> {
        Tensor::apply(Cos, &[self])
    }
    fn recip(&self) -> Result<Tensor> {
        Tensor::apply(Recip, &[self])
    }
    fn square(&self) -> Result<Tensor> {
        Tensor::apply(Square, &[self])
    }
    fn maximum(&self, rhs: &Tensor) -> Result<Tensor> {
        Tensor::apply(Extremum { is_max: true }, &[self, rhs])
    }
    fn minimum(&self, rhs: &Tensor) -> Result<Tensor> {
        Tensor::apply(Extremum { is_max: false }, &[self, rhs])
    }
    fn eq_t(&self, rhs: &Tensor) -> Result<Tensor> {
        Ok(constant(self.data().eq(&rhs.data())?))
    }
    fn ne_t(&self, rhs: &Tensor) -> Result<Tensor> {
        Ok(constant(self.data().ne(&rhs.data())?))
    }
    fn lt_t(&self, rhs: &Tensor) -> Result<Tensor> {
        Ok(constant(self.data().lt(&rhs.data())?))
    }
    fn le_t(&self, rhs: &Tensor) -> Result<Tensor> {
        Ok(constant(self.data().le(&rhs.data())?))
    }
    fn gt_t(&self, rhs: &Tensor) -> Result<Tensor> {
        Ok(constant(self.data().gt(&rhs.data())?))
    }
    fn ge_t(&self, rhs: &Tensor) -> Result<Tensor> {
        Ok(constant(self.data().ge(&rhs.data())?))
    }
}
// ANCHOR_END: impl
