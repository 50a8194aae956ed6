//! `BatchNorm2d`: batch normalisation of images, one mean and variance per
//! channel over the batch and every pixel.
//!
//! Chapter 05's `BatchNorm1d` normalises `[N, C, L]` over `N` and `L`. An
//! image batch `[N, C, H, W]` seen as `[N, C, H·W]` (a view, no copy) is
//! exactly that: the statistics of channel `c` are taken over the same
//! `N·H·W` numbers. So `BatchNorm2d` is a `BatchNorm1d` behind a reshape,
//! with everything it does: training and evaluation modes, running
//! statistics updated with momentum on the device (no read back to the
//! host in a training step), the unbiased variance in the running
//! average, an optional affine transform, and PyTorch's state-dict names.

mod training;

pub use training::{batch_norm_train, BatchNormBackward, BatchNormForward};

use chapter_02::{DType, Device, Error, Result, Tensor as RawTensor};
use chapter_03::Tensor;
use chapter_04::prelude::*;
use chapter_05::{BatchNorm1d, BatchNormConfig, Module, Slot, Visit};
use std::ops::{Deref, DerefMut};

// ANCHOR: batch_norm2d
/// Batch normalisation over `[N, C, H, W]` (Ioffe & Szegedy, 2015):
///
/// `y = (x − μ_c) / √(σ²_c + ε) · γ_c + β_c`
///
/// with `μ_c`, `σ²_c` over `N·H·W` values per channel in training (and the
/// running averages updated), the running averages in evaluation. Its
/// fields (`weight`, `bias`, `running_mean`, ...) are those of the
/// `BatchNorm1d` inside, reached through `Deref`.
pub struct BatchNorm2d(BatchNorm1d);

impl BatchNorm2d {
    /// PyTorch's defaults: `ε = 1e-5`, momentum `0.1`, affine, tracking
    /// running statistics; `f32` on the default device.
    pub fn new(num_features: usize) -> Result<Self> {
        Ok(BatchNorm2d(BatchNorm1d::new(num_features)?))
    }

    pub fn with_options(
        num_features: usize,
        config: BatchNormConfig,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        Ok(BatchNorm2d(BatchNorm1d::with_options(
            num_features,
            config,
            dtype,
            device,
        )?))
    }
}

impl Module for BatchNorm2d {
    /// `x: [N, C, H, W]` → same shape.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_then(x, None, false)
    }
}

impl BatchNorm2d {
    /// `relu(bn(x))`, the pair that follows almost every convolution of a
    /// ResNet: in training, one operation whose kernels apply the ReLU in
    /// batch norm's own passes (a pass over the activations fewer each
    /// way, and one tensor fewer kept for the backward pass); otherwise
    /// the two in turn.
    pub fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_then(x, None, true)
    }

    /// `relu(bn(x) + shortcut)`, the end of a residual block: in training,
    /// one operation whose writing pass also reads the shortcut (three
    /// passes over the activations fewer in the forward pass than the
    /// three layers in turn); otherwise the three in turn. `shortcut` must
    /// have the shape of `x`.
    pub fn forward_add_relu(&self, x: &Tensor, shortcut: &Tensor) -> Result<Tensor> {
        if shortcut.shape() != x.shape() {
            return Err(Error::invalid(
                "BatchNorm2d",
                format!(
                    "the shortcut added to the output must have the input's shape {}, got {}",
                    x.shape(),
                    shortcut.shape()
                ),
            ));
        }
        self.forward_then(x, Some(shortcut), true)
    }

    /// Batch norm of `x`, plus `shortcut` if there is one, then a ReLU if
    /// `relu`.
    fn forward_then(&self, x: &Tensor, shortcut: Option<&Tensor>, relu: bool) -> Result<Tensor> {
        let dims = x.dims();
        let c = self.0.num_features;
        let &[n, xc, h, w] = dims.as_slice() else {
            return Err(Error::invalid(
                "BatchNorm2d",
                format!(
                    "expected a 4-D input [N, {c}, H, W], got shape {}",
                    x.shape()
                ),
            ));
        };
        if xc != c {
            return Err(Error::invalid(
                "BatchNorm2d",
                format!("expected an input [N, {c}, H, W], got shape {}", x.shape()),
            ));
        }
        if self.0.training.get() && n * h * w <= 1 {
            return Err(Error::invalid(
                "BatchNorm2d",
                format!(
                    "expected more than 1 value per channel when training, got input shape {}",
                    x.shape()
                ),
            ));
        }
        if let Some(y) = self.forward_fused(x, shortcut, relu)? {
            return Ok(y);
        }
        let mut y = self.0.forward(&x.reshape([n, c, h * w])?)?.reshape(dims)?;
        if let Some(s) = shortcut {
            y = y.add(s)?;
        }
        match relu {
            true => y.relu(),
            false => Ok(y),
        }
    }
}
// ANCHOR_END: batch_norm2d

// ANCHOR: forward_fused
impl BatchNorm2d {
    /// Training with `γ`, `β` and a fixed momentum (the usual layer, and
    /// ResNet's) runs as one operation, [`batch_norm_train`], whose kernels
    /// make two passes over the activations instead of chapter 05's
    /// dozen (with `relu`, a ReLU in the same passes, and with a
    /// `shortcut`, its addition); the running averages
    /// are then updated from its statistics, exactly as chapter 05 does it.
    /// `None` for every other configuration, which chapter 05's composite
    /// handles.
    fn forward_fused(
        &self,
        x: &Tensor,
        shortcut: Option<&Tensor>,
        relu: bool,
    ) -> Result<Option<Tensor>> {
        let bn = &self.0;
        let (Some(gamma), Some(beta)) = (&bn.weight, &bn.bias) else {
            return Ok(None);
        };
        let tracking = bn.config.track_running_stats;
        let momentum = match (bn.config.momentum, tracking) {
            (Some(m), true) => m,
            (None, true) => return Ok(None), // a cumulative average
            (_, false) => 0.0,
        };
        if !bn.training.get() {
            return Ok(None);
        }
        let (y, mean, var) = batch_norm_train(x, gamma, beta, shortcut, bn.config.eps, relu)?;
        if tracking {
            // r ← (1 − m)·r + m·statistic, the variance made unbiased.
            let dims = x.dims();
            let count = (x.elem_count() / dims[1]) as f64;
            let blend = |old: RawTensor, new: RawTensor| -> Result<RawTensor> {
                let new = new.to_dtype(old.dtype())?.affine(momentum, 0.0)?;
                old.affine(1.0 - momentum, 0.0)?.add(&new)
            };
            let unbiased = var.affine(count / (count - 1.0), 0.0)?;
            bn.running_mean.set(blend(bn.running_mean.get(), mean)?)?;
            bn.running_var.set(blend(bn.running_var.get(), unbiased)?)?;
            let batches = bn.num_batches_tracked.get();
            let one = RawTensor::ones((), DType::I64, batches.device())?;
            bn.num_batches_tracked.set(batches.add(&one)?)?;
        }
        Ok(Some(y))
    }
}
// ANCHOR_END: forward_fused

impl BatchNorm2d {
    /// The `BatchNorm1d` inside.
    pub fn into_inner(self) -> BatchNorm1d {
        self.0
    }
}

/// A `BatchNorm1d` used on images: same parameters, same statistics.
impl From<BatchNorm1d> for BatchNorm2d {
    fn from(bn: BatchNorm1d) -> Self {
        BatchNorm2d(bn)
    }
}

/// The state of the `BatchNorm1d` inside, under the same names.
impl Visit for BatchNorm2d {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        self.0.visit(prefix, f)
    }
}

impl Deref for BatchNorm2d {
    type Target = BatchNorm1d;
    fn deref(&self) -> &BatchNorm1d {
        &self.0
    }
}

impl DerefMut for BatchNorm2d {
    fn deref_mut(&mut self) -> &mut BatchNorm1d {
        &mut self.0
    }
}
