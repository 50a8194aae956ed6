//! The two residual blocks of He et al. (2016), with torchvision's layout
//! and parameter names, so that a block's state dict reads like
//! PyTorch's: `conv1.weight`, `bn1.weight`, `bn1.running_mean`, ...,
//! `downsample.0.weight`, `downsample.1.bias`.

use super::config::BlockSpec;
use crate::batch_norm::BatchNorm2d;
use crate::conv::Conv2dOptions;
use crate::layers::Conv2d;
use chapter_02::Error;
use chapter_03::{DType, Device, Result, Tensor};
use chapter_05::init::{kaiming_normal, FanMode, Nonlinearity};
use chapter_05::{BatchNormConfig, Buffer, Module};

// ANCHOR: conv_init
/// A bias-free `k × k` convolution (`padding = k / 2`, so stride 1 keeps
/// the size) initialised as torchvision initialises a ResNet's:
/// `N(0, 2 / fan_out)` with `fan_out = out·k·k` (Kaiming, fan-out mode,
/// ReLU gain). Fan-out keeps the *gradients'* variance through the stack,
/// which is what a deep network needs at the start of training. No bias:
/// the batch norm that follows subtracts any constant anyway.
pub fn resnet_conv(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    dtype: DType,
    device: &Device,
) -> Result<Conv2d> {
    let weight = kaiming_normal(
        [out_channels, in_channels, kernel, kernel],
        FanMode::FanOut,
        Nonlinearity::Relu,
        dtype,
        device,
    )?;
    Ok(Conv2d {
        weight: Tensor::param(weight)?,
        bias: None,
        options: Conv2dOptions::default().stride(stride).padding(kernel / 2),
    })
}
// ANCHOR_END: conv_init

/// Batch norm with PyTorch's defaults (weight 1, bias 0, `ε = 1e-5`,
/// momentum 0.1).
fn batch_norm(channels: usize, dtype: DType, device: &Device) -> Result<BatchNorm2d> {
    BatchNorm2d::with_options(channels, BatchNormConfig::default(), dtype, device)
}

/// Where [`BasicBlock::from_tensors`] finds a tensor by its torchvision name.
pub type TensorSource<'a> = &'a dyn Fn(&str) -> Result<Tensor>;

/// A convolution whose weight is `get(name)` itself (so gradients reach
/// the caller's tensor).
fn conv_from(get: TensorSource<'_>, name: &str, kernel: usize, stride: usize) -> Result<Conv2d> {
    Ok(Conv2d {
        weight: get(&format!("{name}.weight"))?,
        bias: None,
        options: Conv2dOptions::default().stride(stride).padding(kernel / 2),
    })
}

/// A batch norm whose weight and bias are the caller's tensors and whose
/// running statistics start from copies of theirs.
fn bn_from(get: TensorSource<'_>, name: &str, config: BatchNormConfig) -> Result<BatchNorm2d> {
    let weight = get(&format!("{name}.weight"))?;
    let (dtype, device) = (weight.dtype(), weight.device());
    let mut bn = BatchNorm2d::with_options(weight.dims()[0], config, dtype, &device)?;
    bn.running_mean = Buffer::new(get(&format!("{name}.running_mean"))?.data().copy()?);
    bn.running_var = Buffer::new(get(&format!("{name}.running_var"))?.data().copy()?);
    bn.weight = Some(weight);
    bn.bias = Some(get(&format!("{name}.bias"))?);
    Ok(bn)
}

// ANCHOR: downsample
/// The projection shortcut: a strided 1 × 1 convolution and a batch norm,
/// used where a block changes the width or the size of the image, so that
/// `x` can be added to the block's output. A tuple struct, so its two
/// layers are named `downsample.0` and `downsample.1`, as PyTorch's
/// `nn.Sequential` names them.
#[derive(Module)]
pub struct Downsample(pub Conv2d, pub BatchNorm2d);

impl Downsample {
    pub fn new(spec: &BlockSpec, dtype: DType, device: &Device) -> Result<Self> {
        let (i, o, s) = (spec.in_channels, spec.out_channels, spec.stride);
        Ok(Downsample(
            resnet_conv(i, o, 1, s, dtype, device)?,
            batch_norm(o, dtype, device)?,
        ))
    }
}

impl Module for Downsample {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.1.forward(&self.0.forward(x)?)
    }
}

/// Whether a block needs a projection shortcut: its output differs from its
/// input in width or size, and it has a shortcut at all.
fn needs_downsample(spec: &BlockSpec, residual: bool) -> bool {
    residual && (spec.stride != 1 || spec.in_channels != spec.out_channels)
}
// ANCHOR_END: downsample

/// Checks that `x` is `[N, channels, H, W]`, naming the block and the layer
/// that would receive it.
fn check_input(block: &'static str, layer: &str, x: &Tensor, channels: usize) -> Result<()> {
    if x.rank() != 4 || x.dims()[1] != channels {
        return Err(Error::invalid(
            block,
            format!(
                "{layer} expects an input [N, {channels}, H, W], got shape {}",
                x.shape()
            ),
        ));
    }
    Ok(())
}

// ANCHOR: basic_block
/// The basic residual block:
///
/// `y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`
///
/// with 3 × 3 convolutions (`conv1` carries the stride) and `shortcut` the
/// identity, or [`Downsample`] where the shape changes. The block only has
/// to learn the *difference* from the identity, and the gradient reaches
/// `x` through the `+` unchanged, however deep the stack. With
/// `residual = false` the `+ shortcut(x)` is left out (a plain block).
#[derive(Module)]
pub struct BasicBlock {
    pub conv1: Conv2d,
    pub bn1: BatchNorm2d,
    pub conv2: Conv2d,
    pub bn2: BatchNorm2d,
    pub downsample: Option<Downsample>,
    #[module(skip)]
    pub residual: bool,
}

impl BasicBlock {
    pub fn new(spec: &BlockSpec, residual: bool, dtype: DType, device: &Device) -> Result<Self> {
        let (i, o, s) = (spec.in_channels, spec.out_channels, spec.stride);
        Ok(BasicBlock {
            conv1: resnet_conv(i, o, 3, s, dtype, device)?,
            bn1: batch_norm(o, dtype, device)?,
            conv2: resnet_conv(o, o, 3, 1, dtype, device)?,
            bn2: batch_norm(o, dtype, device)?,
            downsample: match needs_downsample(spec, residual) {
                true => Some(Downsample::new(spec, dtype, device)?),
                false => None,
            },
            residual,
        })
    }
}

impl Module for BasicBlock {
    /// `x: [N, in, H, W]` → `[N, out, ⌈H/s⌉, ⌈W/s⌉]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_input("BasicBlock", "conv1", x, self.conv1.weight.dims()[1])?;
        let out = self.bn1.forward_relu(&self.conv1.forward(x)?)?;
        let out = self.conv2.forward(&out)?;
        if !self.residual {
            return self.bn2.forward_relu(&out);
        }
        let identity = match &self.downsample {
            Some(projection) => projection.forward(x)?,
            None => x.clone(),
        };
        // relu(bn2(out) + identity), in one pass where it can be.
        self.bn2.forward_add_relu(&out, &identity)
    }
}
// ANCHOR_END: basic_block

// ANCHOR: from_tensors
impl BasicBlock {
    /// A residual block made of given tensors, found by their torchvision
    /// names (`conv1.weight`, `bn1.weight`, `bn1.bias`, `bn1.running_mean`,
    /// `bn1.running_var`, ..., and `downsample.0.weight`, `downsample.1.*`
    /// when the spec needs a projection). The parameters *are* the tensors
    /// `get` returns, so gradients land on them; the running statistics
    /// start from copies. This is how the parity suite runs PyTorch's
    /// block on PyTorch's weights.
    pub fn from_tensors(
        spec: &BlockSpec,
        bn: BatchNormConfig,
        get: TensorSource<'_>,
    ) -> Result<Self> {
        let downsample = match needs_downsample(spec, true) {
            true => Some(Downsample(
                conv_from(get, "downsample.0", 1, spec.stride)?,
                bn_from(get, "downsample.1", bn)?,
            )),
            false => None,
        };
        Ok(BasicBlock {
            conv1: conv_from(get, "conv1", 3, spec.stride)?,
            bn1: bn_from(get, "bn1", bn)?,
            conv2: conv_from(get, "conv2", 3, 1)?,
            bn2: bn_from(get, "bn2", bn)?,
            downsample,
            residual: true,
        })
    }
}
// ANCHOR_END: from_tensors

// ANCHOR: bottleneck
/// The bottleneck block of ResNet-50 and deeper (expansion 4):
///
/// `y = relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x))`
///
/// `conv1` (1 × 1) reduces `in` channels to `width = out / 4`, `conv2`
/// (3 × 3, with the stride, as in torchvision's "ResNet v1.5") works at
/// that width, `conv3` (1 × 1) expands to `out`. Most of the work happens
/// at a quarter of the width: a 3 × 3 convolution at 256 channels costs
/// 590k weights, a bottleneck from 256 to 256 costs 70k.
#[derive(Module)]
pub struct Bottleneck {
    pub conv1: Conv2d,
    pub bn1: BatchNorm2d,
    pub conv2: Conv2d,
    pub bn2: BatchNorm2d,
    pub conv3: Conv2d,
    pub bn3: BatchNorm2d,
    pub downsample: Option<Downsample>,
    #[module(skip)]
    pub residual: bool,
}

impl Bottleneck {
    /// How many times wider the output is than the 3 × 3 convolution.
    pub const EXPANSION: usize = 4;

    /// `spec.out_channels` must be a multiple of [`Self::EXPANSION`].
    pub fn new(spec: &BlockSpec, residual: bool, dtype: DType, device: &Device) -> Result<Self> {
        let (i, o, s) = (spec.in_channels, spec.out_channels, spec.stride);
        if o == 0 || !o.is_multiple_of(Self::EXPANSION) {
            return Err(Error::invalid(
                "Bottleneck",
                format!("out_channels = {o} is not a positive multiple of the expansion 4"),
            ));
        }
        let width = o / Self::EXPANSION;
        Ok(Bottleneck {
            conv1: resnet_conv(i, width, 1, 1, dtype, device)?,
            bn1: batch_norm(width, dtype, device)?,
            conv2: resnet_conv(width, width, 3, s, dtype, device)?,
            bn2: batch_norm(width, dtype, device)?,
            conv3: resnet_conv(width, o, 1, 1, dtype, device)?,
            bn3: batch_norm(o, dtype, device)?,
            downsample: match needs_downsample(spec, residual) {
                true => Some(Downsample::new(spec, dtype, device)?),
                false => None,
            },
            residual,
        })
    }
}

impl Module for Bottleneck {
    /// `x: [N, in, H, W]` → `[N, out, ⌈H/s⌉, ⌈W/s⌉]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_input("Bottleneck", "conv1", x, self.conv1.weight.dims()[1])?;
        let out = self.bn1.forward_relu(&self.conv1.forward(x)?)?;
        let out = self.bn2.forward_relu(&self.conv2.forward(&out)?)?;
        let out = self.conv3.forward(&out)?;
        if !self.residual {
            return self.bn3.forward_relu(&out);
        }
        let identity = match &self.downsample {
            Some(projection) => projection.forward(x)?,
            None => x.clone(),
        };
        self.bn3.forward_add_relu(&out, &identity)
    }
}
// ANCHOR_END: bottleneck

impl Bottleneck {
    /// A residual bottleneck made of given tensors, by torchvision's names
    /// (see [`BasicBlock::from_tensors`]).
    pub fn from_tensors(
        spec: &BlockSpec,
        bn: BatchNormConfig,
        get: TensorSource<'_>,
    ) -> Result<Self> {
        let downsample = match needs_downsample(spec, true) {
            true => Some(Downsample(
                conv_from(get, "downsample.0", 1, spec.stride)?,
                bn_from(get, "downsample.1", bn)?,
            )),
            false => None,
        };
        Ok(Bottleneck {
            conv1: conv_from(get, "conv1", 1, 1)?,
            bn1: bn_from(get, "bn1", bn)?,
            conv2: conv_from(get, "conv2", 3, spec.stride)?,
            bn2: bn_from(get, "bn2", bn)?,
            conv3: conv_from(get, "conv3", 1, 1)?,
            bn3: bn_from(get, "bn3", bn)?,
            downsample,
            residual: true,
        })
    }
}
