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

use chapter_02::{DType, Device, Error, Result};
use chapter_03::Tensor;
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
        self.0.forward(&x.reshape([n, c, h * w])?)?.reshape(dims)
    }
}
// ANCHOR_END: batch_norm2d

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
