//! ResNet (He et al., 2016): deep convolutional networks made trainable by
//! skip connections.
//!
//! - [`config`]: the architecture as data ([`ResNetConfig`]), with the
//!   presets used in the book and a check of its consistency;
//! - [`block`]: the basic and bottleneck blocks, with torchvision's names;
//! - [`model`]: the network built from a configuration.

pub mod block;
pub mod config;
pub mod model;

pub use block::{resnet_conv, BasicBlock, Bottleneck, Downsample};
pub use config::{BlockKind, BlockSpec, ResNetConfig};
pub use model::{Block, ResNet};
