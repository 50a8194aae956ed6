//! Convolutions: their geometry, the im2col lowering and the operations.

pub mod conv2d;
pub mod depthwise;
#[cfg(target_arch = "x86_64")]
mod direct;
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

/// Lets the CPU convolution kernels compute 3 × 3, stride-1 `f32`
/// convolutions directly in AVX-512 or AVX2 registers where they apply
/// (`true`, the default; see `direct/mod.rs`), or makes them use
/// Winograd's method and the lowering instead (`false`), for every thread
/// of the process: for measuring one against the other, and for tests of
/// the other methods. On a CPU with neither AVX-512 nor AVX2 and FMA (or
/// off x86-64) the direct kernels never run, and this changes nothing.
pub fn set_direct_enabled(enabled: bool) {
    #[cfg(target_arch = "x86_64")]
    direct::set_enabled(enabled);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = enabled;
}
