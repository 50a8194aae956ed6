//! The network: a stem, the residual blocks, global average pooling and a
//! linear classifier, built from a [`ResNetConfig`].
//!
//! Names in the state dict follow torchvision where it has a counterpart:
//! the stem is `conv1` / `bn1` and the classifier `fc` at the top level.
//! torchvision groups the blocks into stages (`layer1.0`, `layer2.1`, ...);
//! our configuration is one flat list, so the blocks are `blocks.0`,
//! `blocks.1`, ... in order, each with the names of its block
//! (`blocks.2.downsample.0.weight`).

use super::block::{resnet_conv, BasicBlock, Bottleneck};
use super::config::{BlockKind, ResNetConfig};
use crate::batch_norm::BatchNorm2d;
use crate::layers::Conv2d;
use crate::pool::global_avg_pool2d;
use chapter_02::Error;
use chapter_03::{DType, Device, Result, Tensor};
use chapter_05::{BatchNormConfig, Linear, Module, Slot, Visit};

// ANCHOR: block_enum
/// One block of a network, of either kind. Visited under the block's own
/// names (no extra level), so `blocks.0.conv1.weight` is block 0's `conv1`.
pub enum Block {
    Basic(BasicBlock),
    Bottleneck(Bottleneck),
}

impl Visit for Block {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        match self {
            Block::Basic(b) => b.visit(prefix, f),
            Block::Bottleneck(b) => b.visit(prefix, f),
        }
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Block::Basic(b) => b.forward(x),
            Block::Bottleneck(b) => b.forward(x),
        }
    }
}
// ANCHOR_END: block_enum

// ANCHOR: resnet
/// A residual network for image classification, `x: [N, C, H, W]` →
/// logits `[N, classes]`.
#[derive(Module)]
pub struct ResNet {
    /// The stem: a 3 × 3 stride-1 convolution ...
    pub conv1: Conv2d,
    /// ... and its batch norm (a ReLU follows).
    pub bn1: BatchNorm2d,
    pub blocks: Vec<Block>,
    /// The classifier on the pooled features of the last block.
    pub fc: Linear,
    #[module(skip)]
    config: ResNetConfig,
}

impl ResNet {
    /// Builds the network `config` describes (after
    /// [`validate`](ResNetConfig::validate)), drawing the weights from the
    /// default generator (`chapter_02::manual_seed` makes it reproducible):
    /// convolutions Kaiming-normal in fan-out mode, as torchvision does;
    /// batch norms weight 1, bias 0; the classifier with [`Linear`]'s
    /// default.
    pub fn new(config: &ResNetConfig, dtype: DType, device: &Device) -> Result<Self> {
        config.validate()?;
        let conv1 = resnet_conv(
            config.in_channels,
            config.stem_channels,
            3,
            1,
            dtype,
            device,
        )?;
        let bn1 = BatchNorm2d::with_options(
            config.stem_channels,
            BatchNormConfig::default(),
            dtype,
            device,
        )?;
        let blocks = config
            .blocks
            .iter()
            .map(|spec| {
                Ok(match config.block {
                    BlockKind::Basic => {
                        Block::Basic(BasicBlock::new(spec, config.residual, dtype, device)?)
                    }
                    BlockKind::Bottleneck => {
                        Block::Bottleneck(Bottleneck::new(spec, config.residual, dtype, device)?)
                    }
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let features = config.blocks.last().map_or(0, |b| b.out_channels);
        let fc = Linear::with_options(features, config.num_classes, true, dtype, device)?;
        Ok(ResNet {
            conv1,
            bn1,
            blocks,
            fc,
            config: config.clone(),
        })
    }

    pub fn config(&self) -> &ResNetConfig {
        &self.config
    }
}

impl Module for ResNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.check_input(x)?;
        let mut h = self.bn1.forward_relu(&self.conv1.forward(x)?)?;
        for block in &self.blocks {
            h = block.forward(&h)?;
        }
        // [N, C, h, w] → [N, C, 1, 1] → [N, C] → [N, classes]
        let pooled = global_avg_pool2d(&h)?;
        let n = pooled.dims()[0];
        self.fc.forward(&pooled.reshape([n, pooled.dims()[1]])?)
    }
}
// ANCHOR_END: resnet

// ANCHOR: check_input
impl ResNet {
    /// The size of the last block's feature map for an `h × w` input:
    /// each stride-`s` convolution (3 × 3 with padding 1, or 1 × 1 without)
    /// turns `h` into `⌊(h − 1)/s⌋ + 1`.
    pub fn feature_size(&self, h: usize, w: usize) -> (usize, usize) {
        self.config.blocks.iter().fold((h, w), |(h, w), b| {
            ((h - 1) / b.stride + 1, (w - 1) / b.stride + 1)
        })
    }

    /// Errors a user can fix, reported before any layer runs: the input's
    /// rank and channels (as the stem sees them), an empty image, and, in
    /// training mode, a last feature map with one value per channel, from
    /// which batch norm cannot estimate a variance.
    fn check_input(&self, x: &Tensor) -> Result<()> {
        let c = self.config.in_channels;
        let &[n, xc, h, w] = x.dims().as_slice() else {
            return Err(Error::invalid(
                "ResNet",
                format!(
                    "the stem (conv1) expects images [N, {c}, H, W], got shape {} (rank {}); \
                     a single image needs a batch dimension: [1, {c}, H, W]",
                    x.shape(),
                    x.rank()
                ),
            ));
        };
        if xc != c {
            return Err(Error::invalid(
                "ResNet",
                format!(
                    "the stem (conv1) expects images [N, {c}, H, W] ({c} channel(s)), got shape {}",
                    x.shape()
                ),
            ));
        }
        if n == 0 || h == 0 || w == 0 {
            return Err(Error::invalid(
                "ResNet",
                format!("got an empty batch or image, shape {}", x.shape()),
            ));
        }
        let (fh, fw) = self.feature_size(h, w);
        if self.bn1.training.get() && n * fh * fw <= 1 {
            return Err(Error::invalid(
                "ResNet",
                format!(
                    "input {} is too small to train on: the last block's feature map is \
                     {fh} × {fw} for a batch of {n}, and batch norm needs more than one value \
                     per channel; use a larger batch or image, or eval()",
                    x.shape()
                ),
            ));
        }
        Ok(())
    }
}
// ANCHOR_END: check_input
