//! The layers of a convolutional network, as chapter 05 `Module`s: each
//! holds its parameters (with PyTorch's names and initialisation) and
//! options, and calls the functions of [`conv`](crate::conv) and
//! [`pool`](crate::pool).

use crate::conv::{conv2d, Conv2dOptions};
use crate::pool::{adaptive_avg_pool2d, max_pool2d, Pool2dOptions};
use chapter_02::{default_device, Error};
use chapter_03::{DType, Device, Result, Tensor};
use chapter_05::init::{kaiming_uniform, uniform, FanMode, Nonlinearity};
use chapter_05::Module;

// ANCHOR: conv2d_layer
/// A convolution layer: `weight` `[O, C/groups, kh, kw]` and an optional
/// `bias` `[O]`, initialised as PyTorch does (`U(−1/√fan_in, 1/√fan_in)`,
/// `fan_in = (C/groups)·kh·kw`).
#[derive(Module)]
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    #[module(skip)]
    pub options: Conv2dOptions,
}

impl Conv2d {
    /// `in_channels → out_channels` with a `k × k` kernel, `f32` on the
    /// default device.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        options: Conv2dOptions,
        bias: bool,
    ) -> Result<Self> {
        Conv2d::with_options(
            in_channels,
            out_channels,
            (kernel, kernel),
            options,
            bias,
            DType::F32,
            &default_device()?,
        )
    }

    pub fn with_options(
        in_channels: usize,
        out_channels: usize,
        kernel: (usize, usize),
        options: Conv2dOptions,
        bias: bool,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let g = options.groups;
        if g == 0 || !in_channels.is_multiple_of(g) || !out_channels.is_multiple_of(g) {
            return Err(Error::invalid(
                "Conv2d",
                format!(
                    "groups = {g} must divide in_channels = {in_channels} and \
                     out_channels = {out_channels}"
                ),
            ));
        }
        let shape = [out_channels, in_channels / g, kernel.0, kernel.1];
        let weight = kaiming_uniform(
            shape,
            FanMode::FanIn,
            Nonlinearity::LeakyRelu(5f64.sqrt()),
            dtype,
            device,
        )?;
        let bound = 1.0 / ((in_channels / g * kernel.0 * kernel.1) as f64).sqrt();
        let bias = match bias {
            true => Some(Tensor::param(uniform(
                out_channels,
                -bound,
                bound,
                dtype,
                device,
            )?)?),
            false => None,
        };
        Ok(Conv2d {
            weight: Tensor::param(weight)?,
            bias,
            options,
        })
    }
}

impl Module for Conv2d {
    /// `x: [N, C, H, W]` → `[N, O, out_h, out_w]`. A wrong input rank or
    /// channel count is reported with the layer's name.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = self.weight.dims();
        let c = w[1] * self.options.groups;
        if x.rank() != 4 || x.dims()[1] != c {
            return Err(Error::invalid(
                "Conv2d",
                format!(
                    "expected an input [N, {c}, H, W] (weight {}, groups {}), got shape {}",
                    self.weight.shape(),
                    self.options.groups,
                    x.shape()
                ),
            ));
        }
        conv2d(x, &self.weight, self.bias.as_ref(), &self.options)
    }
}
// ANCHOR_END: conv2d_layer

/// Max pooling as a layer (no parameters).
#[derive(Module)]
pub struct MaxPool2d {
    #[module(skip)]
    pub options: Pool2dOptions,
}

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        max_pool2d(x, &self.options)
    }
}

/// Adaptive average pooling to `(out_h, out_w)` as a layer; `(1, 1)` is
/// the global average pooling before a classifier.
#[derive(Module)]
pub struct AdaptiveAvgPool2d {
    #[module(skip)]
    pub output_size: (usize, usize),
}

impl Module for AdaptiveAvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        adaptive_avg_pool2d(x, self.output_size)
    }
}
