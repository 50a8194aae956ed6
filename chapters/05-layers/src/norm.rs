//! Normalisation layers: `LayerNorm`, `RmsNorm` and `BatchNorm1d`.
//!
//! All three rescale activations to a standard size so that a deep stack of
//! layers neither blows them up nor shrinks them away. They differ in *which*
//! elements share a mean and a variance: LayerNorm and RMSNorm normalise each
//! sample over its trailing (feature) dimensions, BatchNorm normalises each
//! channel over the batch.
//!
//! The arithmetic is one fused [`CustomOp`] per kind, because the backward
//! pass has a short closed form that a chain of `mean`, `sub`, `pow`, `div`
//! nodes would compute in a dozen steps (and keep every intermediate alive
//! for). BatchNorm and RMSNorm normalise with `Normalize` and
//! `RmsNormalize` and apply their learned scale and shift as ordinary
//! broadcasting `mul`/`add`. LayerNorm, which every transformer block runs
//! twice, goes one step further: normalisation, scale and shift are one
//! node whose forward and backward are operators of chapter 02's kernel
//! registry ([`LayerNormForward`], [`LayerNormBackward`]), with a fused
//! single-pass CPU kernel each ([`kernels`]).

pub mod kernels;

use crate::module::{join_name, Buffer, Module, Slot, TrainingFlag, Visit};
use chapter_02::dispatch::call;
use chapter_02::Tensor as RawTensor;
use chapter_02::{
    default_device, DType, Device, DeviceKind, Error, Kernel, Operator, Result, Shape,
};
use chapter_03::{is_grad_enabled, BackwardCtx, CustomOp, Tensor};
use chapter_04::prelude::*;
use chapter_05_derive::Module as DeriveModule;
use std::sync::OnceLock;

fn check_float(x: &RawTensor, op: &'static str) -> Result<()> {
    if !x.dtype().is_float() {
        return Err(Error::UnsupportedDType {
            op,
            dtype: x.dtype(),
        });
    }
    Ok(())
}

// ANCHOR: normalize
/// `x̂ = (x − μ) / √(σ² + ε)`, with the mean `μ` and the *biased* variance
/// `σ² = mean((x − μ)²)` taken over `axes` (and broadcast back): batch
/// norm's normalisation, over every axis but the channels.
///
/// Backward, with `r = 1/√(σ² + ε)` and `g = ∂L/∂x̂`, averaging over the
/// same `N` elements:
///
/// `∂L/∂x = r · (g − mean(g) − x̂ · mean(g ⊙ x̂))`
///
/// The two subtracted terms are the paths through `μ` and through `σ²`:
/// moving every `xᵢ` up by the same amount changes nothing (so the gradient
/// has zero mean), and stretching them all changes nothing either (so it is
/// orthogonal to `x̂`). `r` is recomputed from the input rather than stored,
/// which keeps the backward differentiable for `create_graph`.
struct Normalize {
    axes: Vec<usize>,
    eps: f64,
}
impl CustomOp for Normalize {
    fn name(&self) -> &'static str {
        "normalize"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        check_float(x[0], "normalize")?;
        let centered = x[0].sub(&x[0].mean(self.axes.clone(), true)?)?;
        let var = centered.sqr()?.mean(self.axes.clone(), true)?;
        centered.mul(&var.add_scalar(self.eps)?.powf(-0.5)?)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (x, y) = (ctx.input(0), ctx.output);
        let r = x
            .var(self.axes.clone(), 0, true)?
            .add_scalar(self.eps)?
            .powf(-0.5)?;
        let g_mean = g.mean(self.axes.clone(), true)?;
        let gy_mean = g.mul(y)?.mean(self.axes.clone(), true)?;
        let dx = g.sub(&g_mean)?.sub(&y.mul(&gy_mean)?)?.mul(&r)?;
        Ok(vec![Some(dx)])
    }
}
// ANCHOR_END: normalize

// ANCHOR: rms_normalize
/// `y = x / √(mean(x²) + ε)` over `axes`: LayerNorm without the centring.
///
/// With `r = 1/√(mean(x²) + ε)` (so `y = x·r`) and `∂r/∂xⱼ = −r³xⱼ/N`:
///
/// `∂L/∂x = r · (g − y · mean(g ⊙ y))`
///
/// the LayerNorm formula minus its `mean(g)` term, since there is no mean
/// to move.
struct RmsNormalize {
    axes: Vec<usize>,
    eps: f64,
}
impl CustomOp for RmsNormalize {
    fn name(&self) -> &'static str {
        "rms_normalize"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        check_float(x[0], "rms_normalize")?;
        let ms = x[0].sqr()?.mean(self.axes.clone(), true)?;
        x[0].mul(&ms.add_scalar(self.eps)?.powf(-0.5)?)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (x, y) = (ctx.input(0), ctx.output);
        let r = x
            .mul(x)?
            .mean(self.axes.clone(), true)?
            .add_scalar(self.eps)?
            .powf(-0.5)?;
        let gy_mean = g.mul(y)?.mean(self.axes.clone(), true)?;
        Ok(vec![Some(g.sub(&y.mul(&gy_mean)?)?.mul(&r)?)])
    }
}
// ANCHOR_END: rms_normalize

/// The last `k` axes of a tensor of rank `rank`, after checking that its
/// trailing dimensions are `normalized_shape`.
fn trailing_axes(x: &Tensor, normalized_shape: &[usize], op: &'static str) -> Result<Vec<usize>> {
    let dims = x.dims();
    let k = normalized_shape.len();
    if k == 0 || dims.len() < k || dims[dims.len() - k..] != *normalized_shape {
        return Err(Error::ShapeMismatch {
            op,
            lhs: x.shape(),
            rhs: normalized_shape.into(),
            detail: " (the input's trailing dimensions must equal normalized_shape)".into(),
        });
    }
    Ok((dims.len() - k..dims.len()).collect())
}

/// `x ⊙ weight + bias`, each optional, broadcasting from the right.
fn affine(x: Tensor, weight: Option<&Tensor>, bias: Option<&Tensor>) -> Result<Tensor> {
    let x = match weight {
        Some(w) => x.mul(w)?,
        None => x,
    };
    match bias {
        Some(b) => x.add(b),
        None => Ok(x),
    }
}

// ANCHOR: layer_norm_operators
/// Layer norm's forward over rows, as a registry operator. Inputs: `x`
/// `[rows, n]`, then `γ` `[n]` if `weight`, then `β` `[n]` if `bias`.
/// Outputs: `y = (x − μ)·r ⊙ γ + β` `[rows, n]`, and per row the mean `μ`
/// and `r = 1/√(σ² + ε)` (`[rows]` each, biased `σ²`), which the backward
/// reuses. All in the dtype of `x`.
pub struct LayerNormForward {
    /// Added to the variance: `1e-5` in PyTorch's layers.
    pub eps: f64,
    /// Whether `γ` follows `x` among the inputs.
    pub weight: bool,
    /// Whether `β` is the last input.
    pub bias: bool,
}

/// The checks of both operators: `rows` of `n` elements, each parameter
/// `[n]`, one float dtype throughout.
fn check_layer_norm_inputs(
    op: &'static str,
    rows_inputs: &[&RawTensor],
    per_row: &[&RawTensor],
    per_column: &[&RawTensor],
) -> Result<()> {
    let x = rows_inputs[0];
    if !x.dtype().is_float() {
        return Err(Error::UnsupportedDType {
            op,
            dtype: x.dtype(),
        });
    }
    if x.rank() != 2 || x.dims()[1] == 0 {
        return Err(Error::invalid(
            op,
            format!(
                "expected rows [rows, n] with n > 0, got shape {}",
                x.shape()
            ),
        ));
    }
    let (rows, n) = (x.dims()[0], x.dims()[1]);
    let expected = |ts: &[&RawTensor], shape: Shape| -> Result<()> {
        for t in ts {
            if t.shape() != &shape {
                return Err(Error::ShapeMismatch {
                    op,
                    lhs: x.shape().clone(),
                    rhs: t.shape().clone(),
                    detail: format!(" (expected {shape} for rows {})", x.shape()),
                });
            }
            if t.dtype() != x.dtype() {
                return Err(Error::DTypeMismatch {
                    op,
                    lhs: x.dtype(),
                    rhs: t.dtype(),
                });
            }
        }
        Ok(())
    };
    expected(&rows_inputs[1..], x.shape().clone())?;
    expected(per_row, rows.into())?;
    expected(per_column, n.into())
}

/// Which inputs a parameterised op takes: `1 + weight + bias` of them.
fn arity(op: &'static str, inputs: &[&RawTensor], expected: usize) -> Result<()> {
    if inputs.len() != expected {
        return Err(Error::invalid(
            op,
            format!("takes {expected} tensors, got {}", inputs.len()),
        ));
    }
    Ok(())
}

impl Operator for LayerNormForward {
    fn name(&self) -> &'static str {
        "layer_norm"
    }
    fn check(&self, inputs: &[&RawTensor]) -> Result<()> {
        arity(
            "layer_norm",
            inputs,
            1 + self.weight as usize + self.bias as usize,
        )?;
        check_layer_norm_inputs("layer_norm", &inputs[..1], &[], &inputs[1..])
    }
    /// About ten primitives, the formula as written.
    fn composite(&self, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
        let x = inputs[0];
        let rows = x.dims()[0];
        let mean = x.mean([1], true)?;
        let centered = x.sub(&mean)?;
        let var = centered.sqr()?.mean([1], true)?;
        let rstd = var.add_scalar(self.eps)?.powf(-0.5)?;
        let mut y = centered.mul(&rstd)?;
        // `check` made sure that the parameters the flags announce are there.
        if self.weight {
            y = y.mul(inputs[1])?;
        }
        if self.bias {
            y = y.add(inputs[inputs.len() - 1])?;
        }
        Ok(vec![y, mean.reshape(rows)?, rstd.reshape(rows)?])
    }
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        vec![(DeviceKind::CPU, kernels::layer_norm_forward_cpu)]
    }
}

/// Layer norm's backward over rows, as a registry operator. Inputs: the
/// gradient `g` of `y` and `x` (`[rows, n]` each), the forward's `μ` and
/// `r` (`[rows]` each), then `γ` `[n]` if `weight`. Outputs, with
/// `x̂ = (x − μ)·r` and `ĝ = g ⊙ γ` (or `g`):
///
/// - `dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ ⊙ x̂))`, means along each row;
/// - `dγ = Σ_rows g ⊙ x̂` if `weight`;
/// - `dβ = Σ_rows g` if `bias`.
pub struct LayerNormBackward {
    /// Whether `γ` is the last input, and `dγ` an output.
    pub weight: bool,
    /// Whether `dβ` is an output (the forward had a `β`).
    pub bias: bool,
}

impl Operator for LayerNormBackward {
    fn name(&self) -> &'static str {
        "layer_norm_backward"
    }
    fn check(&self, inputs: &[&RawTensor]) -> Result<()> {
        let op = "layer_norm_backward";
        arity(op, inputs, 4 + self.weight as usize)?;
        check_layer_norm_inputs(op, &inputs[..2], &inputs[2..4], &inputs[4..])
    }
    fn composite(&self, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
        let (g, x) = (inputs[0], inputs[1]);
        let rows = x.dims()[0];
        let mean = inputs[2].reshape((rows, 1))?;
        let rstd = inputs[3].reshape((rows, 1))?;
        let x_hat = x.sub(&mean)?.mul(&rstd)?;
        let g_hat = match self.weight {
            true => g.mul(inputs[4])?,
            false => g.clone(),
        };
        let dx = g_hat
            .sub(&g_hat.mean([1], true)?)?
            .sub(&x_hat.mul(&g_hat.mul(&x_hat)?.mean([1], true)?)?)?
            .mul(&rstd)?;
        let mut out = vec![dx];
        if self.weight {
            out.push(g.mul(&x_hat)?.sum([0], false)?);
        }
        if self.bias {
            out.push(g.sum([0], false)?);
        }
        Ok(out)
    }
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        vec![(DeviceKind::CPU, kernels::layer_norm_backward_cpu)]
    }
}
// ANCHOR_END: layer_norm_operators

// ANCHOR: layer_norm_op
/// `F.layer_norm` as one autograd node with inputs `(x, γ?, β?)`: the
/// trailing `n` elements of `x` are one row, [`LayerNormForward`] computes
/// `y` with the rows' `μ` and `r`, which are kept for the backward pass,
/// and [`LayerNormBackward`] turns them into all three gradients at once.
///
/// Under `create_graph` the backward pass must itself be differentiable,
/// so it is written with autograd ops instead, recomputing `μ` and `r`
/// from `x` (the saved ones are constants to autograd).
struct LayerNormOp {
    /// Elements per row: the product of `normalized_shape`.
    n: usize,
    eps: f64,
    weight: bool,
    bias: bool,
    /// `[μ, r]`, `[rows]` each, saved by the forward pass.
    saved: OnceLock<[RawTensor; 2]>,
}

impl LayerNormOp {
    /// `t` as `[rows, n]` rows.
    fn rows(&self, t: &RawTensor) -> Result<RawTensor> {
        t.reshape((t.elem_count() / self.n, self.n))
    }
    /// The parameters among the inputs, as `[n]` vectors.
    fn params<'a>(&self, inputs: impl Iterator<Item = &'a RawTensor>) -> Result<Vec<RawTensor>> {
        inputs.map(|p| p.reshape(self.n)).collect()
    }

    /// The backward formula with autograd ops, for `create_graph`.
    fn differentiable_backward(
        &self,
        ctx: &BackwardCtx<'_>,
        g: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        let x = ctx.input(0);
        let rows = (x.elem_count() / self.n, self.n);
        let x = x.reshape(rows)?;
        let g = g.reshape(rows)?;
        let mean = x.mean([1], true)?;
        let centered = x.sub(&mean)?;
        let r = centered
            .mul(&centered)?
            .mean([1], true)?
            .add_scalar(self.eps)?
            .powf(-0.5)?;
        let x_hat = centered.mul(&r)?;
        let g_hat = match self.weight {
            true => g.mul(&ctx.input(1).reshape(self.n)?)?,
            false => g.clone(),
        };
        let dx = g_hat
            .sub(&g_hat.mean([1], true)?)?
            .sub(&x_hat.mul(&g_hat.mul(&x_hat)?.mean([1], true)?)?)?
            .mul(&r)?;
        let mut grads = vec![Some(dx.reshape(ctx.input(0).shape())?)];
        if self.weight {
            let dw = g.mul(&x_hat)?.sum([0], false)?;
            grads.push(Some(dw.reshape(ctx.input(1).shape())?));
        }
        if self.bias {
            let db = g.sum([0], false)?;
            grads.push(Some(db.reshape(ctx.input(ctx.inputs.len() - 1).shape())?));
        }
        Ok(grads)
    }
}

impl CustomOp for LayerNormOp {
    fn name(&self) -> &'static str {
        "layer_norm"
    }
    fn forward(&self, inputs: &[&RawTensor]) -> Result<RawTensor> {
        let x = inputs[0];
        let rows = self.rows(x)?;
        let params = self.params(inputs[1..].iter().copied())?;
        let mut args = vec![&rows];
        args.extend(&params);
        let op = LayerNormForward {
            eps: self.eps,
            weight: self.weight,
            bias: self.bias,
        };
        let [y, mean, rstd]: [RawTensor; 3] = call(&op, &args)?
            .try_into()
            .map_err(|_| Error::invalid("layer_norm", "expected three outputs"))?;
        let _ = self.saved.set([mean, rstd]);
        y.reshape(x.shape().clone())
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        if is_grad_enabled() {
            return self.differentiable_backward(ctx, g);
        }
        let [mean, rstd] = self
            .saved
            .get()
            .ok_or_else(|| Error::invalid("layer_norm", "backward before forward"))?;
        let (g, x) = (self.rows(&g.data())?, self.rows(&ctx.input(0).data())?);
        let weight = match self.weight {
            true => self.params(std::iter::once(&ctx.input(1).data()))?,
            false => vec![],
        };
        let mut args = vec![&g, &x, mean, rstd];
        args.extend(&weight);
        let op = LayerNormBackward {
            weight: self.weight,
            bias: self.bias,
        };
        let grads = call(&op, &args)?;
        grads
            .into_iter()
            .zip(ctx.inputs)
            .map(|(grad, input)| Ok(Some(Tensor::from_raw(grad.reshape(input.shape())?))))
            .collect()
    }
}
// ANCHOR_END: layer_norm_op

// ANCHOR: layer_norm_fn
/// `F.layer_norm`: normalise over the trailing `normalized_shape` dims,
/// then scale and shift elementwise. Shape: `[..., *normalized_shape]` in
/// and out; `weight` and `bias` have shape `normalized_shape`.
pub fn layer_norm(
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    trailing_axes(x, normalized_shape, "layer_norm")?;
    for p in weight.iter().chain(&bias) {
        if p.dims() != normalized_shape {
            return Err(Error::ShapeMismatch {
                op: "layer_norm",
                lhs: p.shape(),
                rhs: normalized_shape.into(),
                detail: " (weight and bias must have shape normalized_shape)".into(),
            });
        }
    }
    let op = LayerNormOp {
        n: normalized_shape.iter().product(),
        eps,
        weight: weight.is_some(),
        bias: bias.is_some(),
        saved: OnceLock::new(),
    };
    let inputs: Vec<&Tensor> = std::iter::once(x).chain(weight).chain(bias).collect();
    Tensor::apply(op, &inputs)
}
// ANCHOR_END: layer_norm_fn

/// PyTorch's default RMSNorm epsilon: the machine epsilon of the dtype
/// (`torch.finfo(dtype).eps`), the smallest `ε` with `1 + ε ≠ 1`.
pub fn machine_epsilon(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => f64::EPSILON,
        _ => f32::EPSILON as f64,
    }
}

/// `F.rms_norm`: `x / √(mean(x²) + ε) ⊙ weight` over the trailing
/// `normalized_shape` dims. `eps: None` means the dtype's machine epsilon,
/// PyTorch's default.
pub fn rms_norm(
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    eps: Option<f64>,
) -> Result<Tensor> {
    let axes = trailing_axes(x, normalized_shape, "rms_norm")?;
    let eps = eps.unwrap_or_else(|| machine_epsilon(x.dtype()));
    let y = Tensor::apply(RmsNormalize { axes, eps }, &[x])?;
    affine(y, weight, None)
}

// ANCHOR: batch_norm_fn
/// `F.batch_norm` for inputs `[N, C, *]` (channels on dim 1): each channel is
/// normalised over the batch and every other dimension.
///
/// - `training` (or no running statistics given): use the batch's mean and
///   *biased* variance; when running statistics are given, update them in
///   place with `momentum`: `r ← (1 − m)·r + m·batch_stat`, where the
///   variance pushed into `running_var` is the *unbiased* one
///   (`σ²·n/(n − 1)`), an estimate of the population's variance.
/// - otherwise (evaluation): use the running statistics, which do not change.
///
/// `weight`/`bias` have shape `[C]`. The same argument order as PyTorch.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm(
    x: &Tensor,
    running_mean: Option<&Buffer>,
    running_var: Option<&Buffer>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    training: bool,
    momentum: f64,
    eps: f64,
) -> Result<Tensor> {
    let momentum = Momentum::Fixed(momentum);
    let stats = running_mean.zip(running_var);
    batch_norm_with(x, stats, weight, bias, training, &momentum, eps)
}

/// The weight of a new batch in the running averages.
enum Momentum {
    /// A constant, known on the host: `0.1` by default.
    Fixed(f64),
    /// `1/k` for the `k`-th batch (a cumulative average), as a 0-d tensor
    /// computed on the device from the batch counter, which therefore never
    /// has to be read back to the host.
    Tensor(RawTensor),
}

/// [`batch_norm`] with the running statistics as a pair and the momentum
/// possibly a tensor.
fn batch_norm_with(
    x: &Tensor,
    running_stats: Option<(&Buffer, &Buffer)>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    training: bool,
    momentum: &Momentum,
    eps: f64,
) -> Result<Tensor> {
    let dims = x.dims();
    if dims.len() < 2 {
        return Err(Error::invalid(
            "batch_norm",
            format!("expected an input [N, C, ...], got shape {}", x.shape()),
        ));
    }
    let c = dims[1];
    // [1, C, 1, ...]: per-channel values broadcast against the input.
    let mut per_channel = vec![1; dims.len()];
    per_channel[1] = c;
    let channel_view = |t: &Tensor| t.reshape(per_channel.clone());
    let weight = weight.map(channel_view).transpose()?;
    let bias = bias.map(channel_view).transpose()?;
    let x_hat = match running_stats {
        Some((rm, rv)) if !training => {
            let mean = Tensor::from_raw(rm.get().reshape(per_channel.clone())?);
            let inv_std = rv
                .get()
                .add_scalar(eps)?
                .powf(-0.5)?
                .reshape(per_channel.clone())?;
            x.sub(&mean)?.mul(&Tensor::from_raw(inv_std))?
        }
        _ => {
            let axes: Vec<usize> = (0..dims.len()).filter(|&d| d != 1).collect();
            let n: usize = axes.iter().map(|&d| dims[d]).product();
            if training && n <= 1 {
                return Err(Error::invalid(
                    "batch_norm",
                    format!(
                        "expected more than 1 value per channel when training, got input shape {}",
                        x.shape()
                    ),
                ));
            }
            if let (true, Some((rm, rv))) = (training, running_stats) {
                update_running_stats(&x.data(), &axes, rm, rv, momentum)?;
            }
            Tensor::apply(Normalize { axes, eps }, &[x])?
        }
    };
    affine(x_hat, weight.as_ref(), bias.as_ref())
}

/// `running ← (1 − m)·running + m·batch`, for the mean and the unbiased
/// variance of `x` over `axes`. Plain raw-tensor arithmetic: the running
/// statistics are not part of any graph. Everything stays on the device
/// (`n` comes from the shape, which the host knows).
fn update_running_stats(
    x: &RawTensor,
    axes: &[usize],
    rm: &Buffer,
    rv: &Buffer,
    momentum: &Momentum,
) -> Result<()> {
    let n: usize = axes.iter().map(|&d| x.dims()[d]).product();
    let c = x.dims()[1];
    let mean = x.mean(axes.to_vec(), false)?;
    let centered = x.sub(&x.mean(axes.to_vec(), true)?)?;
    let unbiased_var = centered
        .sqr()?
        .sum(axes.to_vec(), false)?
        .div_scalar((n - 1) as f64)?;
    let blend = |old: RawTensor, new: RawTensor| -> Result<RawTensor> {
        let old_shape = old.shape().clone();
        let new = new.reshape(c)?.to_dtype(old.dtype())?;
        let blended = match momentum {
            Momentum::Fixed(m) => old.affine(1.0 - m, 0.0)?.add(&new.affine(*m, 0.0)?)?,
            Momentum::Tensor(m) => {
                let m = m.to_dtype(old.dtype())?;
                old.mul(&m.affine(-1.0, 1.0)?)?.add(&new.mul(&m)?)?
            }
        };
        blended.reshape(old_shape)
    };
    rm.set(blend(rm.get(), mean)?)?;
    rv.set(blend(rv.get(), unbiased_var)?)
}
// ANCHOR_END: batch_norm_fn

// ANCHOR: layer_norm
/// Layer normalisation (Ba et al., 2016): each sample is normalised over
/// its trailing `normalized_shape` dimensions, then scaled and shifted:
///
/// `y = (x − μ) / √(σ² + ε) ⊙ γ + β`
///
/// with `μ`, `σ²` (biased) per sample. Shape: `[..., *normalized_shape]` in
/// and out. Defaults as in PyTorch: `ε = 1e-5`, `γ = 1`, `β = 0`.
/// It does not depend on the batch, so it behaves the same in training and
/// evaluation, which is why transformers use it.
#[derive(DeriveModule)]
pub struct LayerNorm {
    /// `γ`, shape `normalized_shape` (`None` without `elementwise_affine`).
    pub weight: Option<Tensor>,
    /// `β`, shape `normalized_shape`.
    pub bias: Option<Tensor>,
    #[module(skip)]
    pub normalized_shape: Vec<usize>,
    pub eps: f64,
}

impl LayerNorm {
    pub fn new(normalized_shape: impl Into<Shape>) -> Result<Self> {
        LayerNorm::with_options(normalized_shape, 1e-5, true, DType::F32, &default_device()?)
    }

    pub fn with_options(
        normalized_shape: impl Into<Shape>,
        eps: f64,
        elementwise_affine: bool,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let shape = normalized_shape.into();
        let (weight, bias) = if elementwise_affine {
            let w = Tensor::param(RawTensor::ones(&shape, dtype, device)?)?;
            let b = Tensor::param(RawTensor::zeros(&shape, dtype, device)?)?;
            (Some(w), Some(b))
        } else {
            (None, None)
        };
        Ok(LayerNorm {
            weight,
            bias,
            normalized_shape: shape.dims().to_vec(),
            eps,
        })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        layer_norm(
            x,
            &self.normalized_shape,
            self.weight.as_ref(),
            self.bias.as_ref(),
            self.eps,
        )
    }
}
// ANCHOR_END: layer_norm

// ANCHOR: rms_norm
/// Root-mean-square normalisation (Zhang & Sennrich, 2019), used by Llama:
///
/// `y = x / √(mean(x²) + ε) ⊙ γ`
///
/// over the trailing `normalized_shape` dims. No centring and no shift: a
/// cheaper LayerNorm that trains as well. `eps: None` is PyTorch's default,
/// the machine epsilon of the input's dtype (`1.19e-7` for `f32`).
#[derive(DeriveModule)]
pub struct RmsNorm {
    /// `γ`, shape `normalized_shape`, initialised to ones.
    pub weight: Option<Tensor>,
    #[module(skip)]
    pub normalized_shape: Vec<usize>,
    pub eps: Option<f64>,
}

impl RmsNorm {
    pub fn new(normalized_shape: impl Into<Shape>) -> Result<Self> {
        RmsNorm::with_options(normalized_shape, None, true, DType::F32, &default_device()?)
    }

    pub fn with_options(
        normalized_shape: impl Into<Shape>,
        eps: Option<f64>,
        elementwise_affine: bool,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let shape = normalized_shape.into();
        let weight = match elementwise_affine {
            true => Some(Tensor::param(RawTensor::ones(&shape, dtype, device)?)?),
            false => None,
        };
        Ok(RmsNorm {
            weight,
            normalized_shape: shape.dims().to_vec(),
            eps,
        })
    }
}

impl Module for RmsNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        rms_norm(x, &self.normalized_shape, self.weight.as_ref(), self.eps)
    }
}
// ANCHOR_END: rms_norm

/// The options of a batch-norm layer, with PyTorch's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormConfig {
    /// Added to the variance: `1e-5`.
    pub eps: f64,
    /// Weight of the new batch in the running averages: `Some(0.1)`.
    /// `None` makes them cumulative averages over every batch seen
    /// (`1/num_batches_tracked`).
    pub momentum: Option<f64>,
    /// Learn a per-channel scale and shift: `true`.
    pub affine: bool,
    /// Keep running statistics for evaluation: `true`. Without them the
    /// layer uses batch statistics in evaluation too.
    pub track_running_stats: bool,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig {
            eps: 1e-5,
            momentum: Some(0.1),
            affine: true,
            track_running_stats: true,
        }
    }
}

// ANCHOR: batch_norm
/// Batch normalisation (Ioffe & Szegedy, 2015) over `[N, C]` or `[N, C, L]`:
/// each channel `c` is normalised with statistics over the batch (and `L`):
///
/// `y = (x − μ_c) / √(σ²_c + ε) · γ_c + β_c`
///
/// In training, `μ_c` and `σ²_c` (biased) come from the batch, and the
/// running averages are updated (with the *unbiased* variance). In
/// evaluation, the running averages are used instead, so the output of one
/// sample no longer depends on the others in its batch. State dict names
/// follow PyTorch: `weight`, `bias`, `running_mean`, `running_var`,
/// `num_batches_tracked`.
pub struct BatchNorm1d {
    /// `γ`, shape `[C]`, ones (`None` without `affine`).
    pub weight: Option<Tensor>,
    /// `β`, shape `[C]`, zeros.
    pub bias: Option<Tensor>,
    /// Shape `[C]`, zeros at first.
    pub running_mean: Buffer,
    /// Shape `[C]`, ones at first.
    pub running_var: Buffer,
    /// An `i64` scalar: how many training batches updated the statistics.
    pub num_batches_tracked: Buffer,
    pub num_features: usize,
    pub config: BatchNormConfig,
    pub training: TrainingFlag,
}

/// Written by hand rather than derived, for one reason: without
/// `track_running_stats` the buffers are not part of the layer's state (as
/// in PyTorch, where they are `None`), so they are not visited.
impl Visit for BatchNorm1d {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        self.weight.visit(&join_name(prefix, "weight"), f);
        self.bias.visit(&join_name(prefix, "bias"), f);
        if self.config.track_running_stats {
            self.running_mean
                .visit(&join_name(prefix, "running_mean"), f);
            self.running_var.visit(&join_name(prefix, "running_var"), f);
            self.num_batches_tracked
                .visit(&join_name(prefix, "num_batches_tracked"), f);
        }
        self.training.visit(&join_name(prefix, "training"), f);
    }
}

impl BatchNorm1d {
    pub fn new(num_features: usize) -> Result<Self> {
        BatchNorm1d::with_options(
            num_features,
            BatchNormConfig::default(),
            DType::F32,
            &default_device()?,
        )
    }

    pub fn with_options(
        num_features: usize,
        config: BatchNormConfig,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let c = num_features;
        let (weight, bias) = match config.affine {
            true => (
                Some(Tensor::param(RawTensor::ones(c, dtype, device)?)?),
                Some(Tensor::param(RawTensor::zeros(c, dtype, device)?)?),
            ),
            false => (None, None),
        };
        Ok(BatchNorm1d {
            weight,
            bias,
            running_mean: Buffer::new(RawTensor::zeros(c, dtype, device)?),
            running_var: Buffer::new(RawTensor::ones(c, dtype, device)?),
            num_batches_tracked: Buffer::new(RawTensor::zeros((), DType::I64, device)?),
            num_features,
            config,
            training: TrainingFlag::new(),
        })
    }

    /// Counts a training batch and returns its weight in the running
    /// averages: `momentum`, or `1/k` for the `k`-th batch (a cumulative
    /// average). The count is incremented, and `1/k` computed, on the
    /// device: reading the counter back would stall a GPU at every step.
    fn count_batch(&self) -> Result<Momentum> {
        let count = self.num_batches_tracked.get();
        let count = count.add(&RawTensor::ones((), DType::I64, count.device())?)?;
        self.num_batches_tracked.set(count.clone())?;
        Ok(match self.config.momentum {
            Some(m) => Momentum::Fixed(m),
            None => Momentum::Tensor(count.to_dtype(DType::F64)?.recip()?),
        })
    }
}

impl Module for BatchNorm1d {
    /// `x: [N, C]` or `[N, C, L]` → same shape.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        if !(dims.len() == 2 || dims.len() == 3) || dims[1] != self.num_features {
            return Err(Error::invalid(
                "BatchNorm1d",
                format!(
                    "expected an input [N, {0}] or [N, {0}, L], got shape {1}",
                    self.num_features,
                    x.shape()
                ),
            ));
        }
        let training = self.training.get();
        if training && dims[0] * dims.get(2).unwrap_or(&1) <= 1 {
            return Err(Error::invalid(
                "BatchNorm1d",
                format!(
                    "expected more than 1 value per channel when training, got input shape {}",
                    x.shape()
                ),
            ));
        }
        let tracking = self.config.track_running_stats;
        let momentum = match training && tracking {
            true => self.count_batch()?,
            false => Momentum::Fixed(0.0),
        };
        let running_stats = tracking.then_some((&self.running_mean, &self.running_var));
        batch_norm_with(
            x,
            running_stats,
            self.weight.as_ref(),
            self.bias.as_ref(),
            training,
            &momentum,
            self.config.eps,
        )
    }
}
// ANCHOR_END: batch_norm
