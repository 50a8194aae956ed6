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
//! for). LayerNorm and BatchNorm share the same op, `Normalize`: they are
//! the same formula over different axes. The learned scale and shift are
//! ordinary broadcasting `mul`/`add`, whose gradients chapter 03 already
//! sums back to the parameters' shapes.

use crate::module::{join_name, Buffer, Module, Slot, TrainingFlag, Visit};
use chapter_02::{default_device, DType, Device, Error, Result, Shape, Tensor as RawTensor};
use chapter_03::{BackwardCtx, CustomOp, Tensor};
use chapter_04::prelude::*;
use chapter_05_derive::Module as DeriveModule;

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
/// `σ² = mean((x − μ)²)` taken over `axes` (and broadcast back).
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
    let axes = trailing_axes(x, normalized_shape, "layer_norm")?;
    let x_hat = Tensor::apply(Normalize { axes, eps }, &[x])?;
    affine(x_hat, weight, bias)
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
    let use_batch_stats = training || running_mean.is_none() || running_var.is_none();
    let x_hat = if use_batch_stats {
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
        if let (true, Some(rm), Some(rv)) = (training, running_mean, running_var) {
            update_running_stats(&x.data(), &axes, rm, rv, momentum)?;
        }
        Tensor::apply(Normalize { axes, eps }, &[x])?
    } else {
        let (rm, rv) = (
            running_mean.expect("checked"),
            running_var.expect("checked"),
        );
        let mean = Tensor::from_raw(rm.get().reshape(per_channel.clone())?);
        let inv_std = rv
            .get()
            .add_scalar(eps)?
            .powf(-0.5)?
            .reshape(per_channel.clone())?;
        x.sub(&mean)?.mul(&Tensor::from_raw(inv_std))?
    };
    affine(x_hat, weight.as_ref(), bias.as_ref())
}

/// `running ← (1 − m)·running + m·batch`, for the mean and the unbiased
/// variance of `x` over `axes`. Plain raw-tensor arithmetic: the running
/// statistics are not part of any graph.
fn update_running_stats(
    x: &RawTensor,
    axes: &[usize],
    rm: &Buffer,
    rv: &Buffer,
    momentum: f64,
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
        old.affine(1.0 - momentum, 0.0)?
            .add(
                &new.reshape(c)?
                    .to_dtype(old.dtype())?
                    .affine(momentum, 0.0)?,
            )?
            .reshape(old_shape)
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
    /// averages: `momentum`, or `1/n` for a cumulative average.
    fn count_batch(&self) -> Result<f64> {
        let count = &self.num_batches_tracked;
        let n = count.get().to_vec_f64()?[0] + 1.0;
        count.set(RawTensor::full(n, (), DType::I64, count.get().device())?)?;
        Ok(self.config.momentum.unwrap_or(1.0 / n))
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
            false => 0.0,
        };
        let (running_mean, running_var) = match tracking {
            true => (Some(&self.running_mean), Some(&self.running_var)),
            false => (None, None),
        };
        batch_norm(
            x,
            running_mean,
            running_var,
            self.weight.as_ref(),
            self.bias.as_ref(),
            training,
            momentum,
            self.config.eps,
        )
    }
}
// ANCHOR_END: batch_norm
