//! # Candle
//!
//! The chapters of the Candle book, stacked into one library. Each chapter is its
//! own crate (`chapter-01`, `chapter-02`, ...); this crate re-exports them under
//! module names that say what they hold, and offers a [`prelude`] that brings the
//! everyday types into scope with one `use`.

/// Chapter 01: reverse-mode automatic differentiation on scalars (`Value`).
pub mod scalar {
    pub use chapter_01::*;
}

/// Chapter 02: n-dimensional tensors, dtypes, devices and the CPU backend.
pub mod tensor {
    pub use chapter_02::*;
}

pub mod commands;

/// The everyday types, in one `use candle::prelude::*;`.
pub mod prelude {
    pub use chapter_02::{DType, Device, Shape, Tensor};
}
