//! This chapter's lessons, included unchanged, on the device that
//! `CANDLE_DEVICE` names (`cuda-emu`, `cuda`; the CPU when unset). There
//! the registry finds no CPU kernel, so im2col, col2im, depthwise
//! convolution and max pooling run as their composites, on the device's
//! own kernels.
//!
//! ```text
//! CANDLE_DEVICE=cuda-emu cargo test -p chapter-09 --test on_cuda
//! ```

// Each included file declares its own `mod common;`.
#![allow(clippy::duplicate_mod)]

#[ctor::ctor]
fn register_chapter_07() {
    chapter_07::register();
}

#[path = "batch_norm.rs"]
mod batch_norm;
#[path = "conv.rs"]
mod conv;
#[path = "errors.rs"]
mod errors;
#[path = "layers.rs"]
mod layers;
#[path = "pool.rs"]
mod pool;
#[path = "resnet.rs"]
mod resnet;
