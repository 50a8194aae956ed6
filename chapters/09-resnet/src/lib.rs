//! # Chapter 09: ResNet
//!
//! Convolutional networks on the engine of chapters 02–05, with no device
//! code of their own beyond CPU kernels registered next to composites:
//!
//! - [`conv`]: `conv2d` (stride, padding including `same`, dilation,
//!   groups) and `conv_transpose2d`, both lowered to one matrix product per
//!   group through im2col, with backward passes that are themselves
//!   convolutions;
//! - [`pool`]: max pooling (with indices), average pooling, adaptive and
//!   global average pooling, each with its backward;
//! - [`layers`]: `Conv2d`, `MaxPool2d` and `AdaptiveAvgPool2d` as modules;
//! - [`batch_norm`]: `BatchNorm2d`, chapter 05's batch norm over images;
//! - [`resnet`]: residual blocks (basic and bottleneck) and the ResNet
//!   built from a [`ResNetConfig`];
//! - [`transforms`]: `RandomAffine`, shifts and rotations for augmentation;
//! - [`experiments`]: the measurement behind the figure on skip
//!   connections (first-layer gradient norms against depth).

pub mod batch_norm;
pub mod conv;
pub mod experiments;
pub mod layers;
pub mod pool;
pub mod resnet;
pub mod transforms;

pub use batch_norm::{batch_norm_train, BatchNorm2d, BatchNormBackward, BatchNormForward};
pub use conv::{
    conv2d, conv_transpose2d, fold, unfold, Conv2dOptions, ConvGeometry, ConvTranspose2dOptions,
    Padding,
};
pub use layers::{AdaptiveAvgPool2d, Conv2d, MaxPool2d};
pub use pool::{
    adaptive_avg_pool2d, avg_pool2d, global_avg_pool2d, max_pool2d, max_pool2d_with_indices,
    AvgPool2dOptions, Pool2dOptions,
};
pub use resnet::{BasicBlock, BlockKind, BlockSpec, Bottleneck, Downsample, ResNet, ResNetConfig};
pub use transforms::RandomAffine;
