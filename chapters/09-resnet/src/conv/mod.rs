//! Convolutions: their geometry, the im2col lowering and the operations.

pub mod conv2d;
pub mod depthwise;
pub mod geometry;
pub mod im2col;
mod padded_rows;
pub mod per_image;
pub(crate) mod prefetch;
pub mod registers;
pub mod winograd;

pub use conv2d::{conv2d, conv2d_with, conv_transpose2d, conv_transpose2d_with};
pub use depthwise::DepthwiseConv2d;
pub use geometry::{windows, Conv2dOptions, ConvGeometry, ConvTranspose2dOptions, Padding};
pub use im2col::{fold, unfold, Col2im, Im2col};
pub use per_image::{ConvForward, ConvInputGrad, ConvWeightGrad};
pub use registers::set_avx512_enabled;
pub use winograd::set_winograd_enabled;
