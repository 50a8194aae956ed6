//! Elementwise arithmetic and the classic unary functions, each with its
//! derivative written next to it.

use crate::{BackwardCtx, CustomOp, Tensor};
use chapter_02::{Result, Tensor as RawTensor};

/// Sums a broadcast gradient back to an input's shape, if that input needs
/// a gradient at all.
fn reduce_to(ctx: &BackwardCtx<'_>, i: usize, g: Tensor) -> Result<Option<Tensor>> {
    if !ctx.needs_grad(i) {
        return Ok(None);
    }
    Ok(Some(g.sum_to(&ctx.input(i).dims())?))
}

// ANCHOR: add
/// `a + b`. Both partial derivatives are 1, so the gradient passes through
/// unchanged, summed over whatever dimensions broadcasting stretched.
struct Add;
impl CustomOp for Add {
    fn name(&self) -> &'static str {
        "add"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].add(x[1])
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![
            reduce_to(ctx, 0, g.clone())?,
            reduce_to(ctx, 1, g.clone())?,
        ])
    }
}
// ANCHOR_END: add

struct Sub;
impl CustomOp for Sub {
    fn name(&self) -> &'static str {
        "sub"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].sub(x[1])
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let gb = if ctx.needs_grad(1) {
            reduce_to(ctx, 1, g.neg()?)?
        } else {
            None
        };
        Ok(vec![reduce_to(ctx, 0, g.clone())?, gb])
    }
}

// ANCHOR: mul
/// `a * b`: ∂/∂a = b and ∂/∂b = a.
struct Mul;
impl CustomOp for Mul {
    fn name(&self) -> &'static str {
        "mul"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].mul(x[1])
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (a, b) = (ctx.input(0), ctx.input(1));
        let ga = if ctx.needs_grad(0) {
            reduce_to(ctx, 0, g.mul(b)?)?
        } else {
            None
        };
        let gb = if ctx.needs_grad(1) {
            reduce_to(ctx, 1, g.mul(a)?)?
        } else {
            None
        };
        Ok(vec![ga, gb])
    }
}
// ANCHOR_END: mul

/// `a / b`: ∂/∂a = 1/b and ∂/∂b = −a/b².
struct Div;
impl CustomOp for Div {
    fn name(&self) -> &'static str {
        "div"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].div(x[1])
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (a, b) = (ctx.input(0), ctx.input(1));
        let ga = if ctx.needs_grad(0) {
            reduce_to(ctx, 0, g.div(b)?)?
        } else {
            None
        };
        let gb = if ctx.needs_grad(1) {
            let q = g.mul(a)?.div(&b.mul(b)?)?;
            reduce_to(ctx, 1, q.neg()?)?
        } else {
            None
        };
        Ok(vec![ga, gb])
    }
}

/// `x * mul + add`: the derivative is the constant `mul`.
struct Affine {
    mul: f64,
    add: f64,
}
impl CustomOp for Affine {
    fn name(&self) -> &'static str {
        "affine"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].affine(self.mul, self.add)
    }
    fn backward(&self, _: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.affine(self.mul, 0.0)?)])
    }
}

struct Neg;
impl CustomOp for Neg {
    fn name(&self) -> &'static str {
        "neg"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].neg()
    }
    fn backward(&self, _: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.neg()?)])
    }
}

/// `xᵉ` for a constant `e`: the derivative is `e·xᵉ⁻¹`.
struct Powf(f64);
impl CustomOp for Powf {
    fn name(&self) -> &'static str {
        "powf"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].powf(self.0)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let d = ctx.input(0).powf(self.0 - 1.0)?.affine(self.0, 0.0)?;
        Ok(vec![Some(g.mul(&d)?)])
    }
}

// ANCHOR: exp
/// `eˣ` is its own derivative, so the backward pass reuses the output.
struct Exp;
impl CustomOp for Exp {
    fn name(&self) -> &'static str {
        "exp"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].exp()
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.mul(ctx.output)?)])
    }
}
// ANCHOR_END: exp

/// `ln x`: the derivative is `1/x`.
struct Log;
impl CustomOp for Log {
    fn name(&self) -> &'static str {
        "log"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].log()
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.div(ctx.input(0))?)])
    }
}

/// `tanh x`: the derivative is `1 − tanh²x`, again from the output.
struct Tanh;
impl CustomOp for Tanh {
    fn name(&self) -> &'static str {
        "tanh"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].tanh()
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let y = ctx.output;
        let d = y.mul(y)?.affine(-1.0, 1.0)?;
        Ok(vec![Some(g.mul(&d)?)])
    }
}

// ANCHOR: methods
impl Tensor {
    /// `self + rhs`, broadcasting.
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        Tensor::apply(Add, &[self, rhs])
    }
    /// `self - rhs`, broadcasting.
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        Tensor::apply(Sub, &[self, rhs])
    }
    /// `self * rhs` elementwise, broadcasting.
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        Tensor::apply(Mul, &[self, rhs])
    }
    /// `self / rhs`, broadcasting.
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        Tensor::apply(Div, &[self, rhs])
    }
    /// `self * mul + add`.
    pub fn affine(&self, mul: f64, add: f64) -> Result<Tensor> {
        Tensor::apply(Affine { mul, add }, &[self])
    }
    pub fn add_scalar(&self, v: f64) -> Result<Tensor> {
        self.affine(1.0, v)
    }
    pub fn mul_scalar(&self, v: f64) -> Result<Tensor> {
        self.affine(v, 0.0)
    }
    pub fn neg(&self) -> Result<Tensor> {
        Tensor::apply(Neg, &[self])
    }
    /// `self ^ e` for a constant exponent.
    pub fn powf(&self, e: f64) -> Result<Tensor> {
        Tensor::apply(Powf(e), &[self])
    }
    pub fn exp(&self) -> Result<Tensor> {
        Tensor::apply(Exp, &[self])
    }
    pub fn log(&self) -> Result<Tensor> {
        Tensor::apply(Log, &[self])
    }
    pub fn tanh(&self) -> Result<Tensor> {
        Tensor::apply(Tanh, &[self])
    }
}
// ANCHOR_END: methods

macro_rules! operator {
    ($trait:ident, $fn:ident, $scalar:expr) => {
        impl std::ops::$trait<&Tensor> for &Tensor {
            type Output = Tensor;
            fn $fn(self, rhs: &Tensor) -> Tensor {
                Tensor::$fn(self, rhs).unwrap_or_else(|e| panic!("{e}"))
            }
        }
        impl std::ops::$trait<Tensor> for Tensor {
            type Output = Tensor;
            fn $fn(self, rhs: Tensor) -> Tensor {
                Tensor::$fn(&self, &rhs).unwrap_or_else(|e| panic!("{e}"))
            }
        }
        impl std::ops::$trait<&Tensor> for Tensor {
            type Output = Tensor;
            fn $fn(self, rhs: &Tensor) -> Tensor {
                Tensor::$fn(&self, rhs).unwrap_or_else(|e| panic!("{e}"))
            }
        }
        impl std::ops::$trait<f64> for &Tensor {
            type Output = Tensor;
            fn $fn(self, rhs: f64) -> Tensor {
                #[allow(clippy::redundant_closure_call)]
                ($scalar)(self, rhs).unwrap_or_else(|e| panic!("{e}"))
            }
        }
        impl std::ops::$trait<f64> for Tensor {
            type Output = Tensor;
            fn $fn(self, rhs: f64) -> Tensor {
                #[allow(clippy::redundant_closure_call)]
                ($scalar)(&self, rhs).unwrap_or_else(|e| panic!("{e}"))
            }
        }
    };
}
operator!(Add, add, |t: &Tensor, v| t.affine(1.0, v));
operator!(Sub, sub, |t: &Tensor, v: f64| t.affine(1.0, -v));
operator!(Mul, mul, |t: &Tensor, v| t.affine(v, 0.0));
operator!(Div, div, |t: &Tensor, v: f64| t.affine(1.0 / v, 0.0));

impl std::ops::Neg for &Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        Tensor::neg(self).unwrap_or_else(|e| panic!("{e}"))
    }
}
impl std::ops::Neg for Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        Tensor::neg(&self).unwrap_or_else(|e| panic!("{e}"))
    }
}
