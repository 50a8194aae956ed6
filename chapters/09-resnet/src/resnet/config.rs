//! What a ResNet is made of, as data: the stem's width, the list of blocks
//! with their channels and strides, the kind of block, the number of
//! classes, and whether the blocks have their skip connections.
//!
//! Keeping the architecture in a plain value (rather than in code that
//! builds layers) lets a training command print it, save it next to a
//! checkpoint, and check it before a single weight is drawn.

use chapter_03::{Error, Result};

// ANCHOR: config
/// The residual block a network is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Two 3 × 3 convolutions (ResNet-18/34 and the CIFAR ResNets).
    Basic,
    /// 1 × 1 (reduce to `out/4` channels), 3 × 3 (carries the stride),
    /// 1 × 1 (expand to `out`): ResNet-50 and deeper.
    Bottleneck,
}

/// One block: its input and output channels and the stride of its first
/// spatial convolution. For a [`BlockKind::Bottleneck`], `out_channels` is
/// the block's *output* (expanded) width, a multiple of 4; the 3 × 3
/// convolution inside works on `out_channels / 4` channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSpec {
    pub in_channels: usize,
    pub out_channels: usize,
    pub stride: usize,
}

impl BlockSpec {
    pub const fn new(in_channels: usize, out_channels: usize, stride: usize) -> Self {
        BlockSpec {
            in_channels,
            out_channels,
            stride,
        }
    }
}

/// A whole network: a 3 × 3 stride-1 stem (convolution, batch norm, ReLU),
/// the blocks in order, global average pooling and a linear classifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResNetConfig {
    /// Channels of the input images: 1 for digits and MNIST, 3 for CIFAR.
    pub in_channels: usize,
    /// Output channels of the stem convolution.
    pub stem_channels: usize,
    /// The blocks in order; the first one's `in_channels` is
    /// `stem_channels`, each next one's is the previous one's `out_channels`.
    pub blocks: Vec<BlockSpec>,
    pub block: BlockKind,
    pub num_classes: usize,
    /// `false` builds the same network without skip connections (a "plain"
    /// network in He et al.'s words): same layers, same parameters except
    /// the shortcut projections, which a plain network does not have.
    pub residual: bool,
}
// ANCHOR_END: config

/// `n` copies of a block of `width` channels, at stride 1.
fn same_width(n: usize, width: usize) -> impl Iterator<Item = BlockSpec> {
    (0..n).map(move |_| BlockSpec::new(width, width, 1))
}

// ANCHOR: presets
impl ResNetConfig {
    /// A 14-layer ResNet for 28 × 28 MNIST digits: stem of 16 channels and
    /// six basic blocks, two per stage of 16, 32 and 64 channels, the
    /// second and third stages halving the image (28 → 14 → 7). 174,970
    /// parameters, as the same network in PyTorch.
    pub fn resnet14_mnist() -> Self {
        let blocks = [
            (16, 16, 1),
            (16, 16, 1),
            (16, 32, 2),
            (32, 32, 1),
            (32, 64, 2),
            (64, 64, 1),
        ];
        ResNetConfig {
            in_channels: 1,
            stem_channels: 16,
            blocks: blocks.map(|(i, o, s)| BlockSpec::new(i, o, s)).to_vec(),
            block: BlockKind::Basic,
            num_classes: 10,
            residual: true,
        }
    }

    /// A small ResNet for the 8 × 8 digits of chapter 06 (10,978
    /// parameters): an 8-channel stem and four basic blocks of 8 and 16
    /// channels. No stride: an 8 × 8 image has no pixels to spare.
    pub fn resnet14_digits() -> Self {
        let blocks = [(8, 8, 1), (8, 8, 1), (8, 16, 1), (16, 16, 1)];
        ResNetConfig {
            in_channels: 1,
            stem_channels: 8,
            blocks: blocks.map(|(i, o, s)| BlockSpec::new(i, o, s)).to_vec(),
            block: BlockKind::Basic,
            num_classes: 10,
            residual: true,
        }
    }

    /// He et al. (2016)'s ResNet-20 for 32 × 32 CIFAR images: a 16-channel
    /// stem, then three stages of three basic blocks at 16, 32 and 64
    /// channels with strides 1, 2, 2 (32 → 16 → 8), `6·3 + 2 = 20` layers
    /// with weights. Where the width changes we use a 1 × 1 projection
    /// shortcut (the paper's option B, torchvision's choice), so the network
    /// has 272,474 parameters for 10 classes instead of the paper's 0.27 M
    /// with zero-padded identity shortcuts (option A).
    pub fn resnet20_cifar(num_classes: usize) -> Self {
        let mut blocks = Vec::new();
        let mut in_channels = 16;
        for (width, stride) in [(16, 1), (32, 2), (64, 2)] {
            blocks.push(BlockSpec::new(in_channels, width, stride));
            blocks.extend(same_width(2, width));
            in_channels = width;
        }
        ResNetConfig {
            in_channels: 3,
            stem_channels: 16,
            blocks,
            block: BlockKind::Basic,
            num_classes,
            residual: true,
        }
    }

    /// A network of `depth = 2·n + 2` layers with weights (the stem, `n`
    /// basic blocks of two convolutions, the classifier), all `width`
    /// channels wide at stride 1: depth changes and nothing else, which is
    /// what the experiment on skip connections needs. `depth` must be even
    /// and at least 4.
    pub fn with_depth_basic(
        depth: usize,
        width: usize,
        in_channels: usize,
        num_classes: usize,
    ) -> Result<Self> {
        if depth < 4 || !depth.is_multiple_of(2) {
            return Err(Error::invalid(
                "ResNetConfig",
                format!(
                    "depth {depth} is not 2·blocks + 2 with at least one block \
                     (an even number from 4 on)"
                ),
            ));
        }
        let config = ResNetConfig {
            in_channels,
            stem_channels: width,
            blocks: same_width((depth - 2) / 2, width).collect(),
            block: BlockKind::Basic,
            num_classes,
            residual: true,
        };
        config.validate()?;
        Ok(config)
    }

    /// The same network with skip connections on (`true`) or off.
    pub fn with_residual(mut self, residual: bool) -> Self {
        self.residual = residual;
        self
    }

    /// Layers with weights: the stem, the convolutions of every block
    /// (shortcut projections not counted, as in the papers) and the
    /// classifier. 14 for [`resnet14_mnist`](Self::resnet14_mnist), 20 for
    /// [`resnet20_cifar`](Self::resnet20_cifar).
    pub fn depth(&self) -> usize {
        let per_block = match self.block {
            BlockKind::Basic => 2,
            BlockKind::Bottleneck => 3,
        };
        per_block * self.blocks.len() + 2
    }
}
// ANCHOR_END: presets

// ANCHOR: validate
impl ResNetConfig {
    /// Checks the configuration before anything is built: every size is
    /// positive, the blocks chain (each one takes what the one before it
    /// gives), and bottleneck widths divide by their expansion of 4.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::invalid("ResNetConfig", msg));
        if self.in_channels == 0 {
            return bad("in_channels is 0; images have at least one channel".into());
        }
        if self.stem_channels == 0 {
            return bad("stem_channels is 0".into());
        }
        if self.num_classes == 0 {
            return bad("num_classes is 0; a classifier needs at least one class".into());
        }
        if self.blocks.is_empty() {
            return bad("no blocks; a ResNet needs at least one".into());
        }
        let mut previous = ("the stem's stem_channels".to_string(), self.stem_channels);
        for (i, b) in self.blocks.iter().enumerate() {
            if b.in_channels == 0 || b.out_channels == 0 {
                return bad(format!(
                    "block {i} has {} input and {} output channels; both must be positive",
                    b.in_channels, b.out_channels
                ));
            }
            if b.stride == 0 {
                return bad(format!("block {i} has stride 0; strides start at 1"));
            }
            if b.in_channels != previous.1 {
                return bad(format!(
                    "block {i} takes in_channels = {} but {} is {}",
                    b.in_channels, previous.0, previous.1
                ));
            }
            if self.block == BlockKind::Bottleneck && !b.out_channels.is_multiple_of(4) {
                return bad(format!(
                    "block {i} is a bottleneck with out_channels = {}, not a multiple of its \
                     expansion 4",
                    b.out_channels
                ));
            }
            previous = (format!("block {i}'s out_channels"), b.out_channels);
        }
        Ok(())
    }
}
// ANCHOR_END: validate
