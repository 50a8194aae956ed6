//! # Chapter 04: operations
//!
//! Chapter 03 built the autograd engine and the handful of operations its
//! own formulas need. This chapter adds every other operation that layers,
//! GPT and ResNet use, each as a [`CustomOp`](chapter_03::CustomOp) whose
//! forward and backward sit side by side, and each checked with `gradcheck`.
//!
//! The operations are methods of extension traits, one per family, so a
//! single `use chapter_04::prelude::*;` makes them callable on any
//! [`Tensor`](chapter_03::Tensor).

pub mod elementwise;
pub mod gelu_kernels;
pub mod index;
pub mod product;
pub mod reduce;
pub mod row_kernels;
pub mod shape;
pub mod softmax;
pub mod softmax_kernels;

/// The extension traits and free functions of this chapter.
pub mod prelude {
    pub use crate::elementwise::*;
    pub use crate::index::*;
    pub use crate::product::*;
    pub use crate::reduce::*;
    pub use crate::shape::*;
    pub use crate::softmax::*;
}
